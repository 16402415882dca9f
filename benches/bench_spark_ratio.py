"""Density-ratio selection on Spark beside the streaming engine: `gio-rs select --method ratio
--engine spark --master local[2]` and `gio-rs select --method ratio` (gio_rs.stream) on the same
slice of bench_stream.py's pool, same estimator, mode, budget and seed; prints both times, their
ratio, and whether both selected the same rows (they must).

    python benches/bench_stream.py generate --folder /data/gio-bench     # once: 20 M x 128 float32
    python benches/bench_spark_ratio.py --folder /data/gio-bench --rows 1000000 --budget-rows 100000

Appends a JSON line to FOLDER/results.jsonl (CPU, SIMD level, load average before and after).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stream import SHARD_ROWS, _gio_rs, _pool_slice, _record  # noqa: E402


def _cpu() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _selected_rows(path: Path, column: str) -> list:
    """The selected pool rows in rank order from an output folder (parquet part files)."""
    table = pq.read_table(path, columns=[column, "rank"]).to_pandas().sort_values("rank")
    return table[column].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000, help="a slice of whole shards")
    parser.add_argument("--budget-rows", type=int, default=100_000)
    parser.add_argument("--estimator", default="gaussian")
    parser.add_argument("--mode", default="top")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--memory-budget", default="3GiB")
    parser.add_argument("--spark-driver-memory", default="4g")
    args = parser.parse_args()
    import gio_rs

    folder = Path(args.folder)
    pool = _pool_slice(folder, args.rows)
    common = [
        "select", "--train", str(pool), "--target", str(folder / "target.parquet"), "--overwrite",
        "--method", "ratio", "--ratio-estimator", args.estimator, "--ratio-mode", args.mode,
        "--budget-rows", str(args.budget_rows), "--seed", "0",
    ]  # fmt: skip
    load_before = os.getloadavg()
    stream_out, spark_out = folder / "slice-ratio-stream", folder / "slice-ratio-spark"
    stream_seconds, stream_peak, _ = _gio_rs(
        *common, "--out", f"{stream_out}/", "--memory-budget", args.memory_budget
    )
    print(f"stream: {stream_seconds:.1f} s", flush=True)
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", f"--driver-memory {args.spark_driver_memory} pyspark-shell")
    spark_seconds, _, _ = _gio_rs(
        *common, "--out", str(spark_out), "--engine", "spark", "--master", args.master
    )
    print(f"spark: {spark_seconds:.1f} s", flush=True)
    stream_rows = _selected_rows(stream_out, "row_index")
    spark_rows = _selected_rows(spark_out, "row_id")
    _record(
        folder,
        {
            "what": "slice: gio-rs select --method ratio, stream vs --engine spark",
            "pool_rows": len(list(pool.iterdir())) * SHARD_ROWS,
            "estimator": args.estimator,
            "mode": args.mode,
            "budget_rows": args.budget_rows,
            "stream_seconds": stream_seconds,
            "stream_peak_rss_bytes": stream_peak,
            "spark_seconds": spark_seconds,
            "spark_master": args.master,
            "spark_to_stream": spark_seconds / stream_seconds,
            "same_rows": stream_rows == spark_rows,
            "cpu": _cpu(),
            "simd_level": gio_rs.simd_level(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()
