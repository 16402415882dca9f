"""Hashing of integer arrays shared by the pool sampler and the duplicate finder."""

from __future__ import annotations

from typing import Optional

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix(z: np.ndarray, scratch: Optional[np.ndarray] = None) -> np.ndarray:
    """SplitMix64's finaliser, in place on a uint64 array (wrapping arithmetic)."""
    t = np.empty_like(z) if scratch is None else scratch
    for shift, factor in ((30, _M1), (27, _M2)):
        np.right_shift(z, np.uint64(shift), out=t)
        z ^= t
        z *= factor
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t
    return z
