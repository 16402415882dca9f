"""The exact-duplicate kernels (gio_rs._core.canonical_row_hashes and duplicate_pairs, src/rowhash.rs)
against the NumPy code gio_rs.io.dedup used before them, kept here as the oracle: the same hash
values bit for bit (a duplicate report never changes with the kernel), the same groups, and the
same duplicates on any dimension, dtype mix, signed zero and subnormal."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gio_rs import GioError, _core
from gio_rs._util.hashing import mix
from gio_rs.io import dedup


def _position_keys(count: int, seed: int) -> np.ndarray:
    return mix(np.arange(count, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed))


def reference_row_hashes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gio_rs.io.dedup.row_hashes as it was in NumPy."""
    x = np.ascontiguousarray(x)
    x = x + x.dtype.type(0)
    raw = x.view(np.uint8).reshape(len(x), -1)
    width = raw.shape[1]
    if width % 8:
        raw = np.concatenate([raw, np.zeros((len(x), 8 - width % 8), np.uint8)], axis=1)
    words = raw.view(np.uint64)
    count = words.shape[1]
    mixed = words ^ _position_keys(count, 0x243F6A8885A308D3)
    mix(mixed)
    first = mixed.sum(axis=1, dtype=np.uint64)
    mixed *= _position_keys(count, 0x13198A2E03707344) | np.uint64(1)
    second = mixed.sum(axis=1, dtype=np.uint64)
    length = np.uint64(count)
    return mix(first + length), mix(second ^ length)


def reference_canonical_hashes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gio_rs.io.dedup.canonical_hashes as it was in NumPy."""
    if x.dtype == np.float32:
        return reference_row_hashes(x)
    x64 = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        x32 = x64.astype(np.float32)
    exact = (x32 == x64).all(axis=1)
    if exact.all():
        return reference_row_hashes(x32)
    h1, h2 = reference_row_hashes(x64)
    if exact.any():
        h1[exact], h2[exact] = reference_row_hashes(x32[exact])
    return h1, h2


def reference_duplicates_in(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gio_rs.io.dedup._duplicates_in as it was in NumPy."""
    if len(records) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((records["row"], records["h2"], records["h1"]))
    ordered = records[order]
    same = (ordered["h1"][1:] == ordered["h1"][:-1]) & (ordered["h2"][1:] == ordered["h2"][:-1])
    if not same.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    group_of = np.cumsum(np.concatenate([[True], ~same])) - 1
    first_row = ordered["row"][starts][group_of]
    repeat = np.concatenate([[False], same])
    return ordered["row"][repeat].astype(np.int64), first_row[repeat].astype(np.int64)


def assert_same_hashes(x: np.ndarray) -> None:
    got, want = dedup.canonical_hashes(x), reference_canonical_hashes(x)
    assert got[0].dtype == np.uint64 and got[1].dtype == np.uint64
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


# Values with repeats, signed zeros, subnormals and float32-exact and inexact float64 values.
_SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-45, 1e-310, 3.4e38, 1e39, 1e300, 2.0**-149, 1 / 3]
_values = st.one_of(st.sampled_from(_SPECIAL), st.floats(allow_nan=False, allow_infinity=False))


@given(st.integers(1, 40), st.integers(1, 19), st.data())
def test_hashes_match_the_numpy_reference(rows, dim, data):
    x64 = data.draw(hnp.arrays(np.float64, (rows, dim), elements=_values))
    if rows > 2:  # some rows repeated, some exactly float32
        x64[rows // 2] = x64[0]
        with np.errstate(over="ignore"):
            x64[1] = np.clip(x64[1], -3e38, 3e38).astype(np.float32)
    assert_same_hashes(x64)
    with np.errstate(over="ignore"):
        x32 = x64.astype(np.float32)
    x32[~np.isfinite(x32)] = 1.5
    assert_same_hashes(x32)
    assert_same_hashes(np.clip(x32, -6e4, 6e4).astype(np.float16).astype(np.float64))


@pytest.mark.parametrize("dim", [1, 2, 3, 128, 129])
def test_hashes_match_on_larger_batches(dim):
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(5000, dim)).astype(np.float32)
    x[::7, 0] = -0.0
    assert_same_hashes(x)
    wide = x.astype(np.float64)
    wide[::3] += 1e-12  # not float32 any more
    assert_same_hashes(wide)
    assert_same_hashes(x.astype(np.float16))  # any other dtype: read as float64
    assert_same_hashes(np.asfortranarray(wide))  # any layout
    empty = dedup.canonical_hashes(x[:0])  # the NumPy code could not reshape no rows
    assert [len(h) for h in empty] == [0, 0]


def test_hashes_equal_for_equal_vectors_in_any_dtype():
    x = np.array([[0.0, 1.5, -2.25], [-0.0, 1.5, -2.25], [0.0, 1.5, -2.25000001]])
    h1, h2 = dedup.canonical_hashes(x)
    assert h1[0] == h1[1] and h2[0] == h2[1] and h1[2] != h1[0]
    f1, f2 = dedup.canonical_hashes(x[:2].astype(np.float32))
    assert f1.tolist() == h1[:2].tolist() and f2.tolist() == h2[:2].tolist()


def _records(h1, h2, rows) -> np.ndarray:
    records = np.empty(len(rows), dedup._RECORD)
    records["h1"], records["h2"], records["row"] = h1, h2, rows
    return records


@given(st.integers(0, 300), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_groups_match_the_numpy_reference(n, distinct, seed):
    rng = np.random.default_rng(seed)
    h1 = rng.integers(0, distinct, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    h2 = rng.integers(0, 2, n).astype(np.uint64) << np.uint64(63)
    rows = rng.permutation(n * 3)[:n].astype(np.int64)  # distinct, in any order
    records = _records(h1, h2, rows)
    got = dedup._duplicates_in(records)
    want = reference_duplicates_in(records)
    for g, w in zip(got, want):
        assert g.dtype == np.int64
        np.testing.assert_array_equal(g, w)


def test_groups_are_the_same_with_any_thread_count():
    """The parallel sort is on the whole record: the same pairs for RAYON_NUM_THREADS=1, 2, 8."""
    script = (
        "import numpy as np; from gio_rs import _core; rng = np.random.default_rng(0); n = 300_000; "
        "h = rng.integers(0, 50_000, n).astype(np.uint64); r = rng.permutation(n).astype(np.int64); "
        "a, b = _core.duplicate_pairs(h, h * np.uint64(3), r); "
        "x = rng.normal(size=(20_000, 33)); x[::5] = x[0]; c, d = _core.canonical_row_hashes(x); "
        "print(hash((a.tobytes(), b.tobytes(), c.tobytes(), d.tobytes())))"
    )
    outputs = set()
    for threads in ("1", "2", "8"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            env={**__import__("os").environ, "RAYON_NUM_THREADS": threads, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_kernel_errors_are_named():
    with pytest.raises(TypeError, match="x: expected a 2-D float32 or float64 array"):
        _core.canonical_row_hashes(np.zeros((2, 2), np.int32))
    with pytest.raises(GioError, match="x: rows have no values"):
        _core.canonical_row_hashes(np.zeros((2, 0)))
    with pytest.raises(GioError, match="x: must be C-contiguous"):
        _core.canonical_row_hashes(np.zeros((3, 4))[:, ::2])
    one = np.zeros(3, np.uint64)
    with pytest.raises(GioError, match="hashes: first, second and rows must have one value"):
        _core.duplicate_pairs(one, one[:2], np.zeros(3, np.int64))
