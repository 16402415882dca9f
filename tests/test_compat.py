"""GIOKL as a drop-in for grad-info-opt (no Spark here; tests/test_compat_spark.py has the Spark half):
both spellings of the class, `gio_rs.GIOKL` as a module path, array-likes (jax, `__array__`,
`__array_interface__`, DLPack) read without a copy, the `stopping_criterion=` alias, pyspark as an
optional extra, and grad-info-opt's README 2-D example run as a script with only its import line
changed (it needs jax, installed by the `test` extra; the test fails rather than skips without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gio_rs
from gio_rs import GIOKL, GioError
from gio_rs._util.arrays import as_matrix

# grad-info-opt's README, "Quick Start", verbatim (github.com/daeveraert/gradient-information-optimization).
README_2D = """\
from GIO import GIOKL
import numpy as np
import jax.numpy as jnp
import matplotlib.pyplot as plt

# Create some data
def getX():
    mean = [3,4]
    cov = [[0.5,0],[0,0.5]]
    np.random.seed(1)
    x, y = np.random.multivariate_normal(mean, cov, 100).T
    return jnp.array([[x[i],y[i]] for i in range(len(x))])

def getXTest():
    mean = [3,4]
    cov = [[0.5,0],[0,0.5]]
    np.random.seed(5)
    x, y = np.random.multivariate_normal(mean, cov, 100).T
    return jnp.array([[x[i],y[i]] for i in range(len(x))])

X = getX()
X_test = getXTest()

# Initialize class
gio_kl = GIOKL.GIOKL(uniform_low=0, uniform_high=8, uniform_start_size=100, dim=2)

# Perform the Algorithm
W, kl_divs, _ = gio_kl.fit(X_test, X, normalize=False)
W = W[100:] # Remove the uniform start

# Plot results
plt.plot(kl_divs)
plt.title("KL Divergence vs. Iterations")
plt.xlabel("Iterations")
plt.ylabel("KL Divergence")
plt.show()
plt.clf()
plt.scatter([each[0] for each in W], [each[1] for each in W], label='Selected Data')
plt.scatter([each[0] for each in X], [each[1] for each in X], label='Target Data')
plt.title("Target Data and Selected Data")
plt.xlabel("Dimension 1")
plt.ylabel("Dimension 2")
plt.legend()
plt.show()
"""

# Runs a script as `python script.py` would (run_name="__main__"), with `init_globals` for the
# README's placeholders, then saves expressions evaluated in the finished script's namespace.
SCRIPT_RUNNER = textwrap.dedent(
    """
    import json, runpy, sys
    import numpy as np
    script, init_globals, dump = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    final = runpy.run_path(script, init_globals=init_globals, run_name="__main__")
    for expression, path in dump.items():
        np.save(path, np.asarray(eval(expression, final)))
    """
)


def as_gio_rs(script: str) -> str:
    """The one change a grad-info-opt user makes."""
    changed = script.replace("from GIO import GIOKL\n", "from gio_rs import GIOKL\n", 1)
    assert changed != script
    return changed


def run_script(tmp_path, script: str, *, init_globals=None, dump=None, env=None, timeout=900):
    """Runs `script` in a fresh interpreter; returns (completed process, {name: array}) where
    `dump` maps names to expressions evaluated after the script (or lists variable names)."""
    path = tmp_path / "example.py"
    path.write_text(script)
    dump = dump if isinstance(dump, dict) else {name: name for name in dump or ()}
    paths = {name: str(tmp_path / f"dump_{name}.npy") for name in dump}
    full_env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT_RUNNER,
            str(path),
            json.dumps(init_globals or {}),
            json.dumps({dump[name]: paths[name] for name in dump}),
        ],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=tmp_path,
        timeout=timeout,
    )
    assert done.returncode == 0, f"the script failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done, {name: np.load(p) for name, p in paths.items()}


def blobs(n: int = 300, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    train = rng.normal(0, 1, (n, d))
    target = rng.normal(0.4, 0.6, (40, d))
    init = rng.normal(0, 1, (10, d))
    return train, target, init


# ------------------------------------------------------------------------------------------------
# Spellings


def test_both_spellings_are_the_same_class():
    assert GIOKL.GIOKL is GIOKL
    assert type(GIOKL.GIOKL(dim=3)) is GIOKL
    from gio_rs.GIOKL import GIOKL as from_module_path

    assert from_module_path is GIOKL
    import gio_rs.GIOKL as module_path

    assert module_path is GIOKL and gio_rs.GIOKL is GIOKL


def test_both_spellings_give_the_same_fit_and_prints(capsys):
    train, target, init = blobs()
    a = GIOKL(dim=4).fit(train, target, D=init, max_iter=8)
    printed_a = capsys.readouterr().out
    b = GIOKL.GIOKL(dim=4).fit(train, target, D=init, max_iter=8)
    printed_b = capsys.readouterr().out
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and printed_a == printed_b
    assert printed_a.startswith("Starting KL: ") and "KL Divergence at iteration 8: " in printed_a


def test_module_path_works_in_a_fresh_interpreter():
    code = (
        "from gio_rs.GIOKL import GIOKL\n"
        "import gio_rs.GIOKL, gio_rs, sys\n"
        "assert gio_rs.GIOKL is GIOKL and GIOKL.GIOKL is GIOKL\n"
        "from gio_rs import GIOKL as again; assert again is GIOKL\n"
        "assert 'pyspark' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------------
# Array-likes


class ArrayProtocol:
    """Exposes only `__array__` (as torch tensors and many array types do)."""

    def __init__(self, data):
        self._data = data

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)


class ArrayInterface:
    """Exposes only `__array_interface__` (a foreign buffer NumPy can view)."""

    def __init__(self, data):
        self._data = data
        self.__array_interface__ = data.__array_interface__


class DLPackOnly:
    """Exposes only DLPack (`__dlpack__` / `__dlpack_device__`), as some tensor libraries do."""

    def __init__(self, data):
        self._data = data

    def __dlpack__(self, **kwargs):
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()


@pytest.mark.parametrize("wrap", [ArrayProtocol, ArrayInterface, DLPackOnly])
def test_array_likes_are_read_in_place(wrap):
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    view = as_matrix("train", wrap(data))
    assert view.dtype == np.float32 and view.shape == (4, 3)
    assert np.shares_memory(view, data)  # no copy


@pytest.mark.parametrize("wrap", [ArrayProtocol, ArrayInterface, DLPackOnly])
def test_fit_on_array_likes_equals_fit_on_arrays(wrap):
    train, target, init = (a.astype(np.float32) for a in blobs())
    before = [a.copy() for a in (train, target, init)]
    expected = GIOKL(dim=4, verbose=False).fit(train, target, D=init, max_iter=6)
    got = GIOKL(dim=4, verbose=False).fit(wrap(train), wrap(target), D=wrap(init), max_iter=6)
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1] == expected[1]
    for a, b in zip(before, (train, target, init)):
        np.testing.assert_array_equal(a, b)
    model = GIOKL(dim=4, verbose=False)
    assert model.calculate_statistical_distance(
        wrap(target), wrap(train)
    ) == model.calculate_statistical_distance(target, train)


def test_jax_arrays_are_accepted_without_conversion():
    # In a child process: jax warns on every later os.fork() of a process that imported it,
    # which this suite's warning filter would turn into errors in other tests.
    code = textwrap.dedent(
        """
        import numpy as np
        import jax.numpy as jnp
        from gio_rs import GIOKL
        from gio_rs._util.arrays import as_matrix
        rng = np.random.default_rng(0)
        train, target, init = (rng.normal(0, 1, s).astype(np.float32) for s in ((300, 4), (40, 4), (10, 4)))
        expected = GIOKL(dim=4, verbose=False).fit(train, target, D=init, max_iter=6)
        j_train, j_target, j_init = jnp.array(train), jnp.array(target), jnp.array(init)
        got = GIOKL(dim=4, verbose=False).fit(j_train, j_target, D=j_init, max_iter=6)
        assert (got[0] == expected[0]).all() and got[1] == expected[1]
        v = GIOKL(verbose=False).gradient_descend(j_target, j_init, j_target[0], 1.0, 3)
        assert (v == GIOKL(verbose=False).gradient_descend(target, init, target[0], 1.0, 3)).all()
        x = jnp.array(train)
        view = as_matrix("train", x)
        assert view.dtype == np.float32 and not view.flags["OWNDATA"]  # a view of jax's buffer
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split() == ["ok"], done.stderr[-3000:]


def test_an_unreadable_tensor_is_refused_by_name():
    class Refuses:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy()")

    with pytest.raises(GioError, match=r"^train: could not be converted to an array \(Can't call numpy"):
        GIOKL(dim=2, verbose=False).fit(Refuses(), np.zeros((5, 2)))


# ------------------------------------------------------------------------------------------------
# fit(stopping_criterion=...)


def test_stopping_criterion_is_an_alias_with_a_warning():
    train, target, init = blobs()
    expected = GIOKL(dim=4, verbose=False).fit(
        train, target, D=init, max_iter=12, stop_criterion="sequential_increase_tolerance"
    )
    with pytest.warns(FutureWarning, match=r"`stopping_criterion` is not a keyword.*pass stop_criterion"):
        got = GIOKL(dim=4, verbose=False).fit(
            train, target, D=init, max_iter=12, stopping_criterion="sequential_increase_tolerance"
        )
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1] == expected[1] and len(got[1]) == 13  # never stops before max_iter (docs/reference.md)
    with pytest.warns(FutureWarning):
        same = GIOKL(dim=4, verbose=False).fit(
            train, target, D=init, max_iter=12, stop_criterion="data_size", stopping_criterion="data_size"
        )
    assert len(same[1]) == 13
    with pytest.raises(TypeError, match=r"got stop_criterion='min_kl' and stopping_criterion='increase'"):
        GIOKL(dim=4, verbose=False).fit(
            train, target, D=init, stop_criterion="min_kl", stopping_criterion="increase"
        )


# ------------------------------------------------------------------------------------------------
# quantize / explode on arrays; pyspark optional


def test_array_explode_prints_the_reference_line(capsys):
    train, target, _ = blobs(400)
    model = GIOKL(dim=4, seed=0)
    model_train, _, labels, _ = model.quantize(train, target, k=12, rseed="manual")
    centers = np.asarray(model_train.clusterCenters())
    rows = model.explode(centers[[3, 7]], labels, centers)
    assert capsys.readouterr().out == "Found 2 centroids out of 2 selected centroids\n"
    assert sorted(rows.tolist()) == sorted(np.flatnonzero(np.isin(labels, [3, 7])).tolist())


def test_quantize_refuses_a_mix_of_spark_and_arrays():
    class DataFrame:  # looks like a pyspark frame by its class, without pyspark
        pass

    DataFrame.__module__ = "pyspark.sql.dataframe"
    with pytest.raises(TypeError, match="both be Spark DataFrames or both arrays"):
        GIOKL(dim=2).quantize(DataFrame(), np.zeros((5, 2)))


def test_without_pyspark_spark_methods_say_what_to_install_and_array_methods_work():
    code = textwrap.dedent(
        """
        import sys
        for name in ("pyspark", "pyarrow"):
            sys.modules[name] = None  # as if not installed
        import numpy as np
        from gio_rs import GIOKL
        model = GIOKL(dim=2, verbose=False, seed=0)
        rng = np.random.default_rng(0)
        train, target = rng.normal(size=(50, 2)), rng.normal(size=(20, 2))
        W, kl, _ = model.fit(train, target, max_iter=3, stop_criterion="data_size")
        assert len(kl) == 4
        model.quantize(train, target, k=4)
        for call in (lambda: model.spark, lambda: model.read_data_from_csv("a", "b"),
                     lambda: model.read_data_from_parquet("a", "b")):
            try:
                call()
            except ImportError as err:
                assert "pip install 'gio_rs[spark]'" in str(err), err
                print(str(err).split(" needs")[0])
            else:
                raise AssertionError("no ImportError")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["GIOKL.spark", "GIOKL.read_data_from_csv", "GIOKL.read_data_from_parquet"]


# ------------------------------------------------------------------------------------------------
# grad-info-opt's README, 2-D example


def test_readme_2d_example_runs_unchanged_but_for_the_import_and_selects_the_reference_rows(
    tmp_path, reference_npz
):
    z, meta = reference_npz
    assert meta["fit_cases"][3]["name"] == "readme_2d"
    script = as_gio_rs(README_2D)
    done, out = run_script(tmp_path, script, dump=("W", "X", "X_test", "kl_divs"))
    # The script's data are the fixture's (float32: jax's default), its uniform start the
    # fixture's D (the same global NumPy seed state).
    np.testing.assert_array_equal(out["X_test"], z["fit3_train"].astype(np.float32))
    np.testing.assert_array_equal(out["X"], z["fit3_X"].astype(np.float32))
    assert out["X"].dtype == np.float32
    selected = out["W"]
    pool = z["fit3_train"].astype(np.float32)
    picked = [np.flatnonzero((pool == row).all(axis=1)) for row in selected]
    assert all(len(p) == 1 for p in picked)
    picked = [int(p[0]) for p in picked]
    assert len(picked) == 96 == len(set(picked)) == len(out["kl_divs"])
    assert set(picked) == set(z["fit3_f64_idx"].tolist())
    printed = done.stdout.splitlines()
    assert printed[0].startswith("Starting KL: ")
    assert len([line for line in printed if line.startswith("KL Divergence at iteration ")]) == 97
