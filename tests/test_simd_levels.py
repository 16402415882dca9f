"""Every SIMD dispatch level this CPU can run gives the results the others give.

`GIO_RS_NO_AVX512=1` and `GIO_RS_NO_SIMD=1` force the lower levels (scripts/test.sh also runs the
core test files under each of them). The level a process uses is checked against the CPU's own
flags, so an AVX2 run on an AVX-512 host, or a scalar run, is never silently the native one.
The fused levels (avx512, avx2, neon) compute the same operations in the same order and must
agree to the bit; the scalar level rounds products separately and must agree to roundoff.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gio_rs


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def expected_level(env: dict) -> str:
    """The level gio_rs must pick under `env`, from the CPU's flags (not from gio_rs)."""
    if env.get("GIO_RS_NO_SIMD"):
        return "scalar"
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "neon"
    flags = cpu_flags()
    if "avx512f" in flags and "avx2" in flags and "fma" in flags and not env.get("GIO_RS_NO_AVX512"):
        return "avx512"
    if "avx2" in flags and "fma" in flags:
        return "avx2"
    return "scalar"


def test_this_process_runs_the_level_its_cpu_and_environment_call_for():
    assert gio_rs.simd_level() == expected_level(dict(os.environ))


def levels_to_run() -> list[dict]:
    """Environments forcing each level this machine has, natively first."""
    base = {k: v for k, v in os.environ.items() if k not in ("GIO_RS_NO_SIMD", "GIO_RS_NO_AVX512")}
    envs = [base, dict(base, GIO_RS_NO_AVX512="1"), dict(base, GIO_RS_NO_SIMD="1")]
    out, seen = [], set()
    for env in envs:
        level = expected_level(env)
        if level not in seen:
            seen.add(level)
            out.append(env)
    return out


# Runs in a child process per level: the core computations on fixed data, as JSON.
CHILD = r"""
import json, sys
import numpy as np
import gio_rs

rng = np.random.default_rng(7)
pool = rng.normal(0.0, 1.0, (300, 37))
target = rng.normal(0.4, 1.0, (60, 37))
init = rng.normal(-0.2, 1.0, (10, 37))
out = {"level": gio_rs.simd_level()}
for dtype in ("float32", "float64"):
    p, t, i = pool.astype(dtype), target.astype(dtype), init.astype(dtype)
    out[f"kl_{dtype}"] = gio_rs.kl_divergence(t, p[:80], k=5)
    out[f"knn_kl_{dtype}"] = gio_rs.knn_kl_divergence(t, p[:80], k=3)
    own = np.where(np.arange(300) < 120, 60 + np.arange(300), -1).astype(np.int64)
    out[f"ratio_knn_counts_{dtype}"] = gio_rs._core.ratio_knn_counts(p, t, p[:120], 10, own).tolist()
    out[f"grad_{dtype}"] = gio_rs.kl_gradient(t, i, t.mean(0).astype("float64")).tolist()
    for v_init in ("mean", "jump"):
        s = gio_rs.select(p, t, init=i, k=5, max_iter=12, stop_criterion="data_size", v_init=v_init, seed=3)
        out[f"select_{v_init}_{dtype}"] = [s.indices.tolist(), s.kl_trace.tolist()]
    g = gio_rs.select(p, t, method="greedy", k=3, max_iter=10, stop_criterion="data_size")
    out[f"greedy_{dtype}"] = [g.indices.tolist(), g.kl_trace.tolist()]
    km = gio_rs.KMeans(12, n_init=2, random_state=0, max_iter=20).fit(p)
    out[f"kmeans_{dtype}"] = [km.labels_.tolist(), km.cluster_centers_.ravel().tolist(), km.inertia_]
    q = gio_rs.select(
        p, t, n_clusters=20, n_clusters_target=15, seed=1, max_iter=5, stop_criterion="data_size"
    )
    out[f"quantized_{dtype}"] = q.indices.tolist()
json.dump(out, sys.stdout)
"""


def run_child(env: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_close(a, b, rtol: float, where: str) -> None:
    """Nested lists of equal structure: integers equal, floats within rtol (NaN equal NaN)."""
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, rtol, f"{where}[{k}]")
    elif isinstance(a, int) and not isinstance(a, bool):
        assert a == b, where
    else:
        if np.isnan(a):
            assert np.isnan(b), where
        else:
            assert abs(a - b) <= rtol * max(1.0, abs(a)), f"{where}: {a!r} vs {b!r}"


def test_every_level_gives_the_same_results():
    results = [run_child(env) for env in levels_to_run()]
    for env, r in zip(levels_to_run(), results):
        assert r["level"] == expected_level(env)
    fused = [r for r in results if r["level"] != "scalar"]
    scalar = [r for r in results if r["level"] == "scalar"]
    assert scalar, "the scalar level always runs"
    for r in fused[1:]:
        for key in r:
            if key != "level":
                assert r[key] == fused[0][key], f"{key}: {r['level']} differs from {fused[0]['level']}"
    for r in fused:
        for key in r:
            if key != "level":
                # Products rounded separately: the same choices, values within roundoff.
                assert_close(r[key], scalar[0][key], 1e-9, f"{key} ({r['level']} vs scalar)")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_the_numpy_reference_at_this_level(dtype):
    """Whatever level this process runs (scripts/test.sh runs this file at each): the estimator
    and its gradient agree with the pure-NumPy reference."""
    from gio_rs import reference

    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 1.0, (70, 33)).astype(dtype)
    y = rng.normal(0.3, 1.0, (90, 33)).astype(dtype)
    v = rng.normal(0.1, 1.0, 33)
    expected = reference.kl_divergence(x.astype(np.float64), y.astype(np.float64), k=4)
    assert gio_rs.kl_divergence(x, y, k=4) == pytest.approx(expected, rel=1e-10)
    grad = gio_rs.kl_gradient(x, y, v)
    ref_grad = reference.kl_gradient(x.astype(np.float64), y.astype(np.float64), v)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_fused_multiply_adds_only_inside_the_simd_entry_points():
    """`f64::mul_add` compiled without the `fma` target feature becomes a library call per
    element. Only src/simd/isa.rs may use it (inside the FMA levels' methods, inlined into their
    `#[target_feature]` entry points, and on aarch64, where FMA is baseline)."""
    src = Path(__file__).resolve().parents[1] / "src"
    offenders = [
        f"{path.relative_to(src)}:{number}"
        for path in sorted(src.rglob("*.rs"))
        if path.name not in ("isa.rs", "tests.rs")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        # The Isa's own `s.mul_add(...)` is the dispatched vector operation, not f64::mul_add.
        if re.search(r"(?<!\bs)\.mul_add\(", line) and not line.lstrip().startswith("//")
    ]
    assert not offenders, f"mul_add outside the SIMD entry points: {offenders}"
