"""A picture of a selection, like the figures of the reference's README: the KL trace, and a 2-D
view of pool, target and selected rows (their first two principal components when d > 2).
Needs matplotlib (``pip install gio_rs[plot]``); drawn off-screen (Agg)."""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from .._util.files import atomic_write

_POOL_POINTS_SHOWN = 5000


def principal_axes(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the two leading principal axes (2, d) of `rows`, signs fixed so the largest
    component of each axis is positive (the picture does not flip between runs)."""
    rows = np.asarray(rows, dtype=np.float64)
    mean = rows.mean(axis=0)
    dim = rows.shape[1]
    if dim <= 2:
        return mean, np.eye(2, dim)
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    if len(axes) < 2:  # a single row: any second axis will do
        axes = np.vstack([axes, np.eye(1, dim, 1 if axes[0, 0] else 0)])
    return mean, axes


def plot_selection(
    path: Any,
    *,
    target: np.ndarray,
    selected: np.ndarray,
    kl_trace: np.ndarray,
    kl_start: float,
    pool: Optional[np.ndarray] = None,
    title: str = "GIO selection",
    overwrite: bool = False,
    seed: int = 0,
) -> None:
    """Write a PNG with the KL trace (left) and target vs selected rows in 2-D (right). `pool`
    rows (a seeded sample of at most 5000) are drawn in grey behind them."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'gio_rs[plot]'") from exc

    target = np.asarray(target, dtype=np.float64)
    selected = np.asarray(selected, dtype=np.float64)
    basis = np.vstack([target, selected]) if len(selected) else target
    mean, axes = principal_axes(basis)
    project = lambda rows: (np.asarray(rows, dtype=np.float64) - mean) @ axes.T  # noqa: E731
    label = "PC" if target.shape[1] > 2 else "x"

    fig, (ax_kl, ax_map) = plt.subplots(1, 2, figsize=(11, 4.6))
    trace = np.concatenate([[kl_start], np.asarray(kl_trace, dtype=np.float64)])
    ax_kl.plot(np.arange(len(trace)), trace, color="tab:blue", marker="." if len(trace) < 60 else None)
    ax_kl.set_xlabel("rows selected")
    ax_kl.set_ylabel("KL(target ‖ selection) estimate")
    ax_kl.set_title("KL trace")
    ax_kl.grid(alpha=0.3)

    if pool is not None and len(pool):
        pool = np.asarray(pool)
        if len(pool) > _POOL_POINTS_SHOWN:
            rng = np.random.default_rng(seed)
            pool = pool[np.sort(rng.choice(len(pool), _POOL_POINTS_SHOWN, replace=False))]
        p = project(pool)
        ax_map.scatter(p[:, 0], p[:, 1], s=4, color="0.8", label="pool", rasterized=True)
    t = project(target)
    ax_map.scatter(t[:, 0], t[:, 1], s=14, color="tab:blue", label="target", alpha=0.8)
    if len(selected):
        s = project(selected)
        ax_map.scatter(s[:, 0], s[:, 1], s=14, color="tab:red", marker="x", label="selected", alpha=0.8)
    ax_map.set_xlabel(f"{label}1")
    ax_map.set_ylabel(f"{label}2")
    ax_map.set_title("target vs selected" + (" (PCA)" if target.shape[1] > 2 else ""))
    ax_map.legend(loc="best", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    try:
        atomic_write(
            os.fspath(path), lambda tmp: fig.savefig(tmp, format="png", dpi=110), overwrite=overwrite
        )
    finally:
        plt.close(fig)
