"""GIOKL's Spark half against the real grad-info-opt, run side by side: the same script, once with
`from GIO import GIOKL` in the reference's venv and once with `from gio_rs import GIOKL`.

Runs only when GIO_REFERENCE_VENV names a venv made by benches/install_reference.sh (it takes a
few minutes: two Spark sessions); CI has no such venv, and skips it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

VENV = os.environ.get("GIO_REFERENCE_VENV")
REFERENCE_PYTHON = Path(VENV or "/nonexistent") / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not REFERENCE_PYTHON.exists(), reason="set GIO_REFERENCE_VENV to a venv from benches/install_reference.sh"
)

SCRIPT = textwrap.dedent(
    """
    import json, sys
    if sys.argv[1] == "reference":
        from GIO import GIOKL
    else:
        from gio_rs import GIOKL
    import jax.numpy as jnp

    gio_kl = GIOKL.GIOKL(uniform_low=-1, uniform_high=1, uniform_start_size=20, dim=6)
    out = {}
    train_df, target_df = gio_kl.read_data_from_csv("train", "target.tsv")
    out["columns"] = train_df.columns
    model_train, model_X, transformed_train, _ = gio_kl.quantize(
        train_df, target_df, k=10, rseed="manual", rseed1=-7, rseed2=4
    )
    out["centers"] = [c.tolist() for c in model_train.clusterCenters()]
    out["centers_X"] = [c.tolist() for c in model_X.clusterCenters()]
    out["labels"] = sorted(
        (r["_c0"], r["prediction"]) for r in transformed_train.select("_c0", "prediction").collect()
    )
    centroids_df = gio_kl.spark.createDataFrame(
        data=[(i, each.tolist()) for i, each in enumerate(model_train.clusterCenters())],
        schema=["id", "centroid"],
    )
    train = jnp.array(model_train.clusterCenters())
    chosen = train[jnp.array([3, 1, 3, 7])]  # cluster 3 twice: its rows come twice
    full = gio_kl.explode(chosen, transformed_train, centroids_df)
    out["explode_columns"] = full.columns
    out["explode"] = sorted((r["i"], r["id"], r["_c0"]) for r in full.collect())
    json.dump(out, open(sys.argv[2], "w"))
    """
)


def test_spark_half_gives_the_references_frames(tmp_path):
    rng = np.random.default_rng(11)
    centers = rng.normal(0, 4, (12, 6))
    train = centers[rng.integers(0, 12, 240)] + rng.normal(size=(240, 6))
    target = centers[:3][rng.integers(0, 3, 60)] + rng.normal(size=(60, 6))
    (tmp_path / "train").mkdir()
    for path, rows, prefix in (
        ("train/part-0.tsv", train[:130], "t"),
        ("train/part-1.tsv", train[130:], "u"),
        ("target.tsv", target, "x"),
    ):
        lines = [f"{prefix}{i}\tsentence {i}\t{json.dumps(v.tolist())}\n" for i, v in enumerate(rows)]
        (tmp_path / path).write_text("".join(lines))
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.sql.shuffle.partitions=4 pyspark-shell",
    }
    results = {}
    for name, python in (("reference", REFERENCE_PYTHON), ("gio_rs", Path(sys.executable))):
        out = tmp_path / f"{name}.json"
        done = subprocess.run(
            [str(python), "script.py", name, str(out)], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Found 4 centroids out of 4 selected centroids" in done.stdout
        results[name] = json.loads(out.read_text())
    assert results["gio_rs"] == results["reference"]
    assert len(results["gio_rs"]["explode"]) > 0
