"""`gio_rs.embed` and `gio_rs.spark` are reachable after a bare `import gio_rs` (PEP 562 lazy
attributes) without `import gio_rs` itself importing tokenizers/safetensors or pyspark. Each check
runs in a fresh interpreter: this one has long imported them for other tests."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("pyspark", "py4j", "tokenizers", "safetensors", "gio_rs.embed", "gio_rs.spark")


def run_python(code: str) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_import_gio_rs_imports_no_heavy_extra():
    out = run_python(
        f"""
        import json, pydoc, sys
        import gio_rs
        after_import = [m for m in {HEAVY!r} if m in sys.modules]
        from gio_rs import *  # noqa
        pydoc.render_doc(gio_rs)  # help(gio_rs) walks the package's attributes
        after_star_and_help = [m for m in {HEAVY!r} if m in sys.modules]
        print(json.dumps({{"after_import": after_import, "after_star_and_help": after_star_and_help,
                          "has_nope": hasattr(gio_rs, "nope")}}))
        """
    )
    assert out == {"after_import": [], "after_star_and_help": [], "has_nope": False}


def test_gio_rs_embed_is_the_callable_module():
    out = run_python(
        """
        import json, sys
        import numpy as np
        import gio_rs
        module = gio_rs.embed  # no `import gio_rs.embed`
        loaded_tokenizers = "tokenizers" in sys.modules  # the module imports them on first use only
        sentences = ["A cat sat on the mat.", "Interest rates rose again."]
        by_call = gio_rs.embed(sentences, batch_size=1)
        from gio_rs.embed import embed, load_model, read_sentences
        import gio_rs.embed as imported
        print(json.dumps({
            "is_module": module is sys.modules["gio_rs.embed"] and imported is module,
            "tokenizers_before_call": loaded_tokenizers,
            "same_vectors": bool(np.array_equal(by_call, embed(sentences, batch_size=1))),
            "shape": list(by_call.shape),
            "functions": [f is getattr(module, f.__name__) for f in (embed, load_model, read_sentences)],
        }))
        """
    )
    assert out == {
        "is_module": True,
        "tokenizers_before_call": False,
        "same_vectors": True,
        "shape": [2, 384],
        "functions": [True, True, True],
    }


def test_gio_rs_embed_callable_whatever_the_import_order():
    """`import gio_rs.embed` first (which binds gio_rs.embed to the module itself) or through
    another module that imports it (gio_rs.io does): the call still works."""
    out = run_python(
        """
        import json
        import gio_rs.embed
        import gio_rs.io
        first = gio_rs.embed(["one sentence"]).shape
        from gio_rs import embed
        print(json.dumps({"shape": list(first), "same": embed is gio_rs.embed,
                          "callable": callable(embed)}))
        """
    )
    assert out == {"shape": [1, 384], "same": True, "callable": True}


def test_gio_rs_spark_is_imported_on_first_use():
    out = run_python(
        """
        import json, sys
        import gio_rs
        before = "pyspark" in sys.modules
        spark = gio_rs.spark
        from gio_rs.spark import select
        print(json.dumps({
            "before": before,
            "after": "pyspark" in sys.modules,
            "is_module": spark is sys.modules["gio_rs.spark"],
            "select": select is spark.select and select is not gio_rs.select,
            "jvm_started": sys.modules["pyspark.sql"].SparkSession.getActiveSession() is not None,
        }))
        """
    )
    assert out == {"before": False, "after": True, "is_module": True, "select": True, "jvm_started": False}


def test_missing_extras_say_what_to_install():
    """Without pyspark, `gio_rs.spark` raises the module's ImportError (what to install); without
    tokenizers, `gio_rs.embed` is still the module and calling it says what to install."""
    out = run_python(
        """
        import json, sys
        sys.modules["pyspark"] = None  # as if not installed
        sys.modules["tokenizers"] = None
        import gio_rs
        try:
            gio_rs.spark
            spark = "no error"
        except ImportError as exc:
            spark = str(exc)
        try:
            gio_rs.embed(["a sentence"])
            embed = "no error"
        except ImportError as exc:
            embed = str(exc)
        print(json.dumps({"spark": spark, "embed": embed}))
        """
    )
    assert "gio_rs.spark needs pyspark" in out["spark"] and "gio_rs[spark]" in out["spark"]
    assert "gio_rs.embed needs" in out["embed"] and "tokenizers" in out["embed"]
