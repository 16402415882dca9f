"""GIOKL.explode on Spark frames: gio_rs against grad-info-opt (the real reference, when its venv
exists), in the same run, on the same frames: K centroids (an (id, centroid) frame), a transformed
frame of N rows with a `prediction` column, and `chosen` centroid rows as float32 jax arrays (as
the reference's fit returns them). Times `explode(...)` plus a `count()` of the result (the join
runs) and checks that both return the same (i, id, row) triples.

    python benches/bench_explode.py [--K 1500] [--d 768] [--N 20000] [--chosen 100]

Each implementation runs in its own process with its own local[2] SparkSession (the reference in
the venv made by benches/install_reference.sh, GIO_REFERENCE_VENV to move it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path(os.environ.get("GIO_REFERENCE_VENV", REPO / ".venv-reference"))

# Run inside each implementation's interpreter: argv = implementation, input .npz, output .json.
WORKER = r"""
import json, sys, time
import numpy as np
impl, data_path, out_path = sys.argv[1:4]
if impl == "reference":
    from GIO import GIOKL
else:
    from gio_rs import GIOKL
import jax.numpy as jnp
from pyspark.sql import SparkSession

z = np.load(data_path)
model = GIOKL.GIOKL(dim=z["centers"].shape[1])
spark = SparkSession.builder.getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
centroids_df = spark.createDataFrame(
    [(i, c.tolist()) for i, c in enumerate(z["centers"])], schema=["id", "centroid"]
)
transformed = spark.createDataFrame(
    [(f"row{i}", int(p)) for i, p in enumerate(z["prediction"])], schema=["_c0", "prediction"]
)
centroids_df.cache().count()
transformed.cache().count()
chosen = jnp.array(z["centers"][z["chosen"]], dtype=jnp.float32)
model.explode(chosen[:2], transformed, centroids_df).count()  # warm-up: JIT, broadcast code paths
start = time.perf_counter()
full = model.explode(chosen, transformed, centroids_df)
rows = full.count()
seconds = time.perf_counter() - start
triples = sorted((r["i"], r["id"], r["_c0"]) for r in full.select("i", "id", "_c0").collect())
json.dump({"seconds": seconds, "rows": rows, "triples": triples}, open(out_path, "w"))
"""


def run(python: Path, impl: str, data: Path, tmp: Path) -> dict:
    out = tmp / f"{impl}.json"
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_SUBMIT_ARGS": "--master local[2] --driver-memory 2g --conf spark.ui.enabled=false "
        "--conf spark.ui.showConsoleProgress=false --conf spark.sql.shuffle.partitions=4 pyspark-shell",
    }
    done = subprocess.run(
        [str(python), "-c", WORKER, impl, str(data), str(out)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{impl} failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--K", type=int, default=1500)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--N", type=int, default=20000)
    parser.add_argument("--chosen", type=int, default=100)
    parser.add_argument("--reference-venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()

    import gio_rs

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(args.K, args.d))
    prediction = rng.integers(0, args.K, args.N)
    chosen = rng.choice(args.K, args.chosen, replace=False)
    print(
        f"GIOKL.explode, K={args.K} centroids, d={args.d}, N={args.N} rows, {args.chosen} chosen, "
        f"local[2]; gio_rs SIMD: {gio_rs.simd_level()}"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data.npz"
        np.savez(data, centers=centers, prediction=prediction, chosen=chosen)
        ours = run(Path(sys.executable), "gio_rs", data, tmp)
        print(f"  gio_rs         {ours['seconds']:8.2f} s  ({ours['rows']} rows)")
        reference_python = args.reference_venv / "bin" / "python"
        if not reference_python.exists():
            print(f"  grad-info-opt  not installed ({args.reference_venv}); run benches/install_reference.sh")
            return
        theirs = run(reference_python, "reference", data, tmp)
        print(f"  grad-info-opt  {theirs['seconds']:8.2f} s  ({theirs['rows']} rows)")
        print(f"  ratio          {theirs['seconds'] / ours['seconds']:8.1f}x faster")
        print(f"  same rows as grad-info-opt: {ours['triples'] == theirs['triples']}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s in all)")
