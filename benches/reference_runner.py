"""Run the real reference (grad-info-opt 0.1.2, ``GIO.GIOKL.GIOKL``) on one problem and time it.

Meant to run INSIDE the reference venv made by ``benches/install_reference.sh``::

    export SPARK_LOCAL_IP=127.0.0.1
    .venv-reference/bin/python benches/reference_runner.py INPUT.npz OUTPUT.json
    .venv-reference/bin/python benches/reference_runner.py --kl INPUT.npz OUTPUT.json

fit mode (default). INPUT.npz holds
    train (M x d), X (n x d), D (m0 x d, optional: without it the reference's own start is used),
    kwargs_json   JSON object of GIOKL.fit keyword arguments (may also carry "dtype"),
    dtype         optional, "float32" (default) or "float64" (sets JAX_ENABLE_X64=1 before jax loads),
    init_kwargs_json  optional JSON object of extra GIOKL(...) arguments (dim is always X.shape[1]),
    seed          optional int: seeds Python's `random` and `np.random` before fit.
OUTPUT.json gets
    seconds_init (SparkSession start + GIOKL(dim=...); seconds_spark is the first part),
    seconds_fit (fit, stdout to /dev/null, results blocked on), n_selected (len(W) - len(D);
    len(kl_divs) without D), kl_divs, selected_train_indices (each row of W[len(D):] matched to the
    first unused train row with exactly equal values; -1 if none), cpu_seconds_fit, load_average
    (after fit), scale_factor, num_resets, dtype, versions.

--kl mode. INPUT.npz holds x, y, k (and optional dtype, eps, discard_nearest_for_xy).
    Times GIOKL.calculate_statistical_distance warm: one call to compile, then best of 5.
    No SparkSession is started (the method does not use it). OUTPUT.json gets seconds_kl,
    seconds_first_call, value, dtype, versions.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time

import numpy as np  # numpy is safe to import before JAX_ENABLE_X64 is decided


def _scalar(npz, key, default=None):
    if key not in npz.files:
        return default
    value = npz[key]
    return value[()] if value.shape == () else value


def _str(npz, key, default=None):
    value = _scalar(npz, key, default)
    if isinstance(value, bytes):
        value = value.decode()
    return None if value is None else str(value)


def _configure_jax(dtype: str) -> None:
    if dtype not in ("float32", "float64"):
        raise SystemExit(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if "jax" in sys.modules:
        raise RuntimeError("jax imported before JAX_ENABLE_X64 was set")
    os.environ["JAX_ENABLE_X64"] = "1" if dtype == "float64" else "0"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import jax

    out = {"python": platform.python_version()}
    for name in ("grad-info-opt", "jax", "jaxlib", "numpy", "pyspark", "pandas", "py4j"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["jax_backend"] = jax.default_backend()
    out["jax_enable_x64"] = bool(jax.config.jax_enable_x64)
    out["cpu_count"] = os.cpu_count()
    out["machine"] = platform.machine()
    return out


def _match_indices(train: np.ndarray, selected: np.ndarray) -> list[int]:
    """Index of each selected row in train: exact equality, first unused match
    (falls back to the first match when all are used, as after a reset)."""
    used: set[int] = set()
    out = []
    for row in selected:
        hits = np.flatnonzero((train == row).all(axis=1))
        free = [int(h) for h in hits if int(h) not in used]
        if free:
            idx = free[0]
        elif len(hits):
            idx = int(hits[0])
        else:
            idx = -1
        used.add(idx)
        out.append(idx)
    return out


def _write(path: str, result: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, path)


def run_fit(inp: str, out: str) -> dict:
    npz = np.load(inp, allow_pickle=False)
    kwargs = json.loads(_str(npz, "kwargs_json", "{}"))
    dtype = _str(npz, "dtype", None) or kwargs.pop("dtype", None) or "float32"
    kwargs.pop("dtype", None)
    init_kwargs = json.loads(_str(npz, "init_kwargs_json", "{}"))
    seed = _scalar(npz, "seed", None)
    np_dtype = np.dtype(dtype)
    train_np = np.ascontiguousarray(npz["train"], dtype=np_dtype)
    X_np = np.ascontiguousarray(npz["X"], dtype=np_dtype)
    D_np = np.ascontiguousarray(npz["D"], dtype=np_dtype) if "D" in npz.files else None

    _configure_jax(dtype)
    # Start the SparkSession (what GIOKL.__init__ does: SparkSession.builder.getOrCreate()) before
    # jax is imported: launching the JVM forks, and forking after jax's threads exist can deadlock.
    # GIOKL.__init__ then gets this same session back; seconds_init counts both.
    t0 = time.perf_counter()
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    seconds_spark = time.perf_counter() - t0
    spark.sparkContext.setLogLevel("ERROR")

    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp
    from GIO.GIOKL import GIOKL  # the package's __init__ is empty

    seconds_import = time.perf_counter() - t0

    train = jnp.asarray(train_np)
    X = jnp.asarray(X_np)
    D = None if D_np is None else jnp.asarray(D_np)
    jax.block_until_ready((train, X, D))

    t0 = time.perf_counter()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        model = GIOKL(dim=X_np.shape[1], **init_kwargs)
    seconds_init = seconds_spark + time.perf_counter() - t0

    if seed is not None:
        import random

        random.seed(int(seed))
        np.random.seed(int(seed))

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        c0, t0 = time.process_time(), time.perf_counter()
        W, kl_divs, extra = model.fit(train, X, D=D, **kwargs)
        jax.block_until_ready((W, kl_divs))
        seconds_fit = time.perf_counter() - t0
        cpu_seconds_fit = time.process_time() - c0

    W_np = np.asarray(W)
    n_init = len(D_np) if D_np is not None else len(W_np) - len(kl_divs)
    selected = W_np[n_init:]
    result = {
        "mode": "fit",
        "seconds_fit": seconds_fit,
        "cpu_seconds_fit": cpu_seconds_fit,  # all threads of this process; less sensitive to other load
        "load_average": list(os.getloadavg()),
        "seconds_init": seconds_init,
        "seconds_spark": seconds_spark,
        "seconds_import": seconds_import,
        "n_selected": int(len(W_np) - n_init),
        "kl_divs": [float(v) for v in kl_divs],
        "selected_train_indices": _match_indices(train_np, selected),
        "scale_factor": float(extra[1]),
        "num_resets": int(extra[3]),
        "shapes": {
            "train": list(train_np.shape),
            "X": list(X_np.shape),
            "D": None if D_np is None else list(D_np.shape),
        },
        "fit_kwargs": kwargs,
        "dtype": dtype,
        "W_dtype": str(W_np.dtype),
        "versions": _versions(),
    }
    model.spark.stop()
    return result


def run_kl(inp: str, out: str, repeats: int = 5) -> dict:
    npz = np.load(inp, allow_pickle=False)
    dtype = _str(npz, "dtype", "float32")
    np_dtype = np.dtype(dtype)
    x_np = np.ascontiguousarray(npz["x"], dtype=np_dtype)
    y_np = np.ascontiguousarray(npz["y"], dtype=np_dtype)
    k = int(_scalar(npz, "k", 5))
    eps = float(_scalar(npz, "eps", 1e-8))
    discard = bool(_scalar(npz, "discard_nearest_for_xy", False))

    _configure_jax(dtype)
    import jax
    import jax.numpy as jnp
    from GIO.GIOKL import GIOKL

    # calculate_statistical_distance never touches self.spark: skip the SparkSession.
    model = GIOKL.__new__(GIOKL)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    jax.block_until_ready((x, y))

    def call():
        return jax.block_until_ready(
            model.calculate_statistical_distance(x, y, k=k, eps=eps, discard_nearest_for_xy=discard)
        )

    t0 = time.perf_counter()
    value = call()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return {
        "mode": "kl",
        "seconds_kl": best,
        "seconds_first_call": first,
        "value": float(value),
        "k": k,
        "shapes": {"x": list(x_np.shape), "y": list(y_np.shape)},
        "dtype": dtype,
        "versions": _versions(),
    }


def main(argv: list[str]) -> None:
    args = [a for a in argv if a != "--kl"]
    kl_mode = len(args) != len(argv)
    if len(args) != 2 or any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    inp, out = args
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    result = run_kl(inp, out) if kl_mode else run_fit(inp, out)
    _write(out, result)
    if kl_mode:
        print(
            f"reference KL ({result['dtype']}): {result['value']!r} in {result['seconds_kl']:.4f} s warm "
            f"(first call {result['seconds_first_call']:.3f} s)",
            file=sys.stderr,
        )
    else:
        rows = max(result["n_selected"], 1)
        print(
            f"reference fit ({result['dtype']}): {result['n_selected']} rows "
            f"in {result['seconds_fit']:.2f} s "
            f"= {result['seconds_fit'] / rows:.3f} s/row; SparkSession {result['seconds_init']:.2f} s",
            file=sys.stderr,
        )
    print(
        f"wrote {out}; reproduce: SPARK_LOCAL_IP=127.0.0.1 {sys.executable} {os.path.abspath(__file__)} "
        f"{'--kl ' if kl_mode else ''}{os.path.abspath(inp)} {os.path.abspath(out)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
