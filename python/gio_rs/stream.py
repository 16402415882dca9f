"""GIO on a pool larger than memory, on one machine: quantise → select among centroids → explode,
over a pool read a piece at a time (gio_rs.batches), in memory bounded by the budget
(`gio_rs.memory`) whatever the number of rows.

    import gio_rs
    result = gio_rs.select_stream("pool/", "target.parquet", n_clusters=10_000,
                                  out="selected/", budget_rows=100_000, work_dir="work/")

The pool is a file or a folder of shards in any format `gio_rs.batches` reads (parquet, Arrow,
Hugging Face `datasets` folders, jsonl[.gz|.zst], CSV/TSV, .npy, .txt), a 2-D array (a
`np.memmap` is read a slice at a time), a list of arrays, a callable returning an iterator of
batches (called once per pass), or an iterator of batches (read once, copied to a spill file).

Stages, each reported (and, with `work_dir`, kept and reused by a rerun with the same inputs and
options, which says so):

1. scan: one pass over the pool. Every vector is checked (dimension, NaN/inf, null; the error
   names the file and row or line, before anything is written), counted and hashed for exact
   duplicates (`gio_rs.dedup`); text is embedded once and spilled to disk.
2. target: read whole (the small side), exact duplicates dropped with a warning (they make the
   estimator's ρ zero), quantised as `gio_rs.quantize` does.
3. kmeans: K-Means (`gio_rs.KMeans`, seeded) fitted on every pool row when its working set fits
   the budget, else on a seeded uniform sample of as many rows as fit (`kmeans_sample_rows` sets
   the number). How many fit is computed from the budget, the inputs and the options with a fixed
   allowance (`RUNTIME_ALLOWANCE`) for the interpreter and readers, never from the memory in use,
   so an explicit budget or `kmeans_sample_rows` pins the sample; with the default "auto" budget
   (the memory available now) it depends on the machine. The result reports `sample_rows`. On
   every row, the centroids and labels are those of `select(n_clusters=K)`.
4. labels: one pass assigning every row to its nearest centroid (the exact kernel of
   `KMeans.predict`), keeping a 4-byte label per row, on disk.
5. selection: `gio_rs.select` among the centroids (every option of select), or with
   `budget_rows` until the chosen clusters hold that many rows (`gio_rs.ranking`).
6. explode: one pass taking the chosen clusters' rows, ranked: clusters in selection order, then
   squared distance to the nearest target centroid, then row. With `out`, they are written in
   rank order with `row_index` (the row's position in the pool, shard after shard), `cluster` and
   `rank`; any prefix of the output is the selection of a smaller budget.

With `dedup="exact"` (the default) a row equal to an earlier one is left out of the pool (never
selected twice); `"none"` keeps it. Both report the duplicates.

Memory: the K-Means sample (or the whole pool when it fits), one batch of rows, the centroids,
the target, and 8 bytes per duplicate row; the labels, the hashes and the output waiting to be
sorted go to disk (the work dir, else a temporary folder beside the output).
"""

from __future__ import annotations

import base64
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from . import _core, io, memory, ranking, sampling
from ._arrays import as_matrix, check_int, same_columns
from ._progress import _make_bar
from .batches import DEFAULT_BATCH_ROWS, ArraySource, Chunk, RowSource, vectors_table
from .dedup import DuplicateFinder, Duplicates, drop_duplicates, text_hashes
from .kmeans import KMeans
from .workdir import WorkDir, key_of
from .writers import RowWriter, conform

DEDUP_MODES = ("exact", "none")
RANK_COLUMN = io.RANK_COLUMN
_POSITION = "_gio_position"  # helper columns of the explode, dropped before writing
_DISTANCE = "_gio_distance"
_LABEL_BYTES = 4
_SAFETY = 0.85
# What the interpreter, NumPy, pyarrow, the packaged text model and a reader's buffers take
# besides the arrays counted one by one (350-460 MiB measured on the 20 M-row benchmark): a fixed
# allowance, not the resident memory of the moment, so that the K-Means sample (and so the
# centroids and the selection) depends only on the inputs, the options and the budget.
RUNTIME_ALLOWANCE = 512 << 20
_MAX_BUCKETS = 256  # of the budget left after what is already resident, planned for


@dataclass(frozen=True)
class StreamSelection:
    """The result of `select_stream`.

    indices : int64 array
        The selected pool rows in rank order (rows numbered over the shards in order).
    cluster_of_row : int64 array
        The cluster of each of `indices`.
    clusters : int64 array
        The chosen clusters in selection order (cut after the last one the budget reaches).
    repeated_clusters : int64 array
        Clusters chosen more than once (after a pool reset); their rows appear once.
    selection : gio_rs.Selection
        The selection among the centroids (kl_trace, stop_reason, ...).
    centers, target_centers : the pool's and the target's centroids.
    pool_rows, kept_rows : rows read, and rows left in the pool after `dedup`.
    sample_rows : rows K-Means was fitted on (pool_rows: every row).
    kmeans_inertia : the fit's inertia on those rows; pool_inertia: the sum over every kept row
        of its squared distance to its centroid.
    duplicates, target_duplicates : `gio_rs.dedup.Duplicates` of the pool and the target.
    output : what was written (path, format, rows, parts), or None.
    reused : the stages taken from the work dir.
    timings : seconds per stage; peak_rss_bytes: this process's peak resident memory.
    """

    indices: np.ndarray
    cluster_of_row: np.ndarray
    clusters: np.ndarray
    repeated_clusters: np.ndarray
    selection: Any
    centers: np.ndarray
    target_centers: np.ndarray
    pool_rows: int
    kept_rows: int
    sample_rows: int
    kmeans_inertia: float
    kmeans_iterations: int
    pool_inertia: float
    duplicates: Duplicates
    target_duplicates: Duplicates
    dedup: str
    output: Optional[dict] = None
    reused: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    peak_rss_bytes: int = 0

    def __len__(self) -> int:
        return len(self.indices)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _is_path_like(value: Any) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return True
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, (str, os.PathLike)) for v in value)
    )


class _Spill:
    """Vectors written to a raw file in row order during the scan and read back by later passes
    (for text, embedded once; for one-shot iterators, read once)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dtype: Optional[np.dtype] = None
        self.dim = 0
        self.rows = 0
        self._fh: Any = None

    def append(self, x: np.ndarray) -> None:
        if self._fh is None:
            self.dtype, self.dim = x.dtype, x.shape[1]
            self._fh = open(self.path, "wb")
        self._fh.write(np.ascontiguousarray(x, dtype=self.dtype).tobytes())
        self.rows += len(x)

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def meta(self) -> dict:
        return {"dtype": str(self.dtype), "dim": self.dim, "rows": self.rows}

    @classmethod
    def from_meta(cls, path: str, meta: dict) -> _Spill:
        spill = cls(path)
        spill.dtype, spill.dim, spill.rows = np.dtype(meta["dtype"]), int(meta["dim"]), int(meta["rows"])
        return spill

    def reader(self) -> _SpillReader:
        return _SpillReader(self)


class _SpillReader:
    def __init__(self, spill: _Spill) -> None:
        self.spill = spill
        self._fh = open(spill.path, "rb")

    def read(self, start: int, count: int) -> np.ndarray:
        assert self.spill.dtype is not None
        row_bytes = self.spill.dim * self.spill.dtype.itemsize
        self._fh.seek(start * row_bytes)
        data = np.fromfile(self._fh, dtype=self.spill.dtype, count=count * self.spill.dim)
        if len(data) != count * self.spill.dim:
            raise _core.GioError(f"{self.spill.path}: the spill file is shorter than the rows it should hold")
        return data.reshape(count, self.spill.dim)

    def close(self) -> None:
        self._fh.close()


class _Labels:
    """The label of every pool row (int32, -1 for a row left out as a duplicate), on disk."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, start: int, count: int) -> np.ndarray:
        with open(self.path, "rb") as fh:
            fh.seek(start * _LABEL_BYTES)
            data = np.fromfile(fh, dtype=np.int32, count=count)
        if len(data) != count:
            raise _core.GioError(f"{self.path}: holds fewer labels than the pool has rows")
        return data


def _open_pool(train: Any, options: dict, batch_rows: int) -> Any:
    if _is_path_like(train):
        return RowSource.open(
            train,
            fmt=options.get("train_format"),
            name=options.get("train_name", "train"),
            features_col=options.get("features_col"),
            feature_columns=options.get("feature_columns"),
            text_column=options.get("text_column"),
            embed_options=options.get("embed_options"),
            batch_rows=batch_rows,
        )
    if isinstance(train, Iterator):
        one_shot = train
        source = ArraySource(lambda: one_shot, name=options.get("train_name", "train"), batch_rows=batch_rows)
        source.one_shot = True  # type: ignore[attr-defined]
        return source
    return ArraySource(train, name=options.get("train_name", "train"), batch_rows=batch_rows)


def _read_whole(value: Any, name: str, options: dict, fmt_key: str) -> np.ndarray:
    """The target (or init): read whole, from a file or folder, or taken as an array."""
    return _read_whole_with_texts(value, name, options, fmt_key)[0]


def _read_whole_with_texts(value: Any, name: str, options: dict, fmt_key: str) -> tuple[np.ndarray, Any]:
    """`_read_whole`, and the texts the vectors were embedded from (None for vectors)."""
    if _is_path_like(value):
        path = value if isinstance(value, (str, os.PathLike)) else value[0]
        if not isinstance(value, (str, os.PathLike)) and len(value) > 1:
            raise _core.GioError(f"{name}: give one file or folder")
        table = io.read_table(
            path,
            fmt=options.get(fmt_key),
            features_col=options.get("features_col"),
            feature_columns=options.get("feature_columns"),
            text_column=options.get("text_column"),
            embed_options=options.get("embed_options"),
        )
        texts = None
        if table.fmt == "text" or options.get("text_column") is not None:
            texts = table.columns.column(table.features_col).to_pylist()
        return table.features, texts
    return as_matrix(name, value), None


def _fingerprint(value: Any, name: str) -> Any:
    if _is_path_like(value):
        paths = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        from .batches import list_shards

        return [s.fingerprint() for p in paths for s in list_shards(p, name=name)]
    if value is None:
        return None
    if isinstance(value, np.memmap) and value.filename:
        stat = os.stat(value.filename)
        return {"memmap": value.filename, "offset": value.offset, "shape": value.shape,
                "dtype": str(value.dtype), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}  # fmt: skip
    if isinstance(value, np.ndarray):
        import hashlib

        return {"array": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                "shape": value.shape, "dtype": str(value.dtype)}  # fmt: skip
    raise _core.GioError(
        f"work_dir: {name} is given as batches, whose contents cannot be checked; resuming needs "
        "files or arrays"
    )


def _plain(value: Any) -> Any:
    """Options as JSON-able values for keys and summaries."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if callable(value):
        return None
    return value


class _Run:
    """One call of `select_stream`: the stages in order, sharing the state below."""

    def __init__(self, train: Any, target: Any, options: dict) -> None:
        self.options = options
        self.report: Callable[[str], None] = options["report"]
        self.progress: bool = options["progress"]
        self.timings: dict[str, float] = {}
        self.reused: list[str] = []
        self.train_value, self.target_value = train, target
        self.batch_rows = check_int("batch_rows", options["batch_rows"], minimum=1)
        self.pool = _open_pool(train, options, self.batch_rows)
        self.one_shot = getattr(self.pool, "one_shot", False)
        out = options.get("out")
        scratch = options.get("scratch_dir")
        if scratch is None and out is not None:
            scratch = os.path.dirname(os.path.abspath(os.fspath(out).rstrip("/" + os.sep)))
        self.work = WorkDir(options.get("work_dir"), scratch_parent=scratch)
        self.spill: Optional[_Spill] = None

    # -- helpers ------------------------------------------------------------------------------

    def _stage(self, name: str, key: str) -> Optional[dict]:
        saved = self.work.load(name, key)
        if saved is not None:
            self.reused.append(name)
            self.report(f"work dir: reusing the {name} stage ({self.work.folder})")
        elif self.work.known(name):
            self.report(f"work dir: the {name} stage was made with other inputs or options; redoing it")
        return saved

    def _bar(self, total: Optional[int], desc: str) -> Any:
        return _make_bar(total, unit="row", desc=desc) if self.progress else None

    def pool_chunks(self, *, table: bool, start_shard: int = 0) -> Iterator[tuple[int, Chunk]]:
        """(global first row, chunk) over the pool, vectors in the working dtype; from the
        spill file for text and one-shot iterators."""
        offsets = self.shard_offsets
        dtype = self.dtype
        if self.one_shot or (self.spill is not None and not table and start_shard == 0):
            assert self.spill is not None
            reader = self.spill.reader()
            try:
                for start in range(0, self.spill.rows, self.batch_rows):
                    n = min(self.batch_rows, self.spill.rows - start)
                    x = reader.read(start, n)
                    chunk = Chunk(0, start, n, vectors=x, names=io.RowNames(first_row=start))
                    if table:
                        chunk.table = vectors_table(x)
                    yield start, chunk
            finally:
                reader.close()
            return
        reader = self.spill.reader() if self.spill is not None else None
        seen = [0] * len(self.pool.shards)
        try:
            for chunk in self.pool.chunks(
                vectors=reader is None, table=table, start_shard=start_shard, embed=False
            ):
                start = offsets[chunk.shard] + chunk.first_row
                if reader is not None:
                    chunk.vectors = reader.read(start, chunk.n_rows)
                elif chunk.vectors is not None:
                    chunk.vectors = np.ascontiguousarray(chunk.vectors, dtype=dtype)
                seen[chunk.shard] += chunk.n_rows
                yield start, chunk
        finally:
            if reader is not None:
                reader.close()
        for index in range(start_shard, len(self.pool.shards)):
            if seen[index] != self.shard_rows[index]:
                raise _core.GioError(
                    f"{self.pool.shards[index].path}: now has {seen[index]} rows, {self.shard_rows[index]} "
                    "when it was first read: an input changed during the run"
                )

    # -- 1. scan ------------------------------------------------------------------------------

    def scan(self) -> None:
        opts = self.options
        self.scan_key = key_of(
            "scan",
            _fingerprint(self.train_value, "train") if self.work.resumable else None,
            {
                k: _plain(opts.get(k))
                for k in ("train_format", "features_col", "feature_columns", "text_column")
            },
            self.batch_rows if self.pool.is_text else None,
        )
        saved = self._stage("scan", self.scan_key)
        started = time.perf_counter()
        if saved is not None:
            self._load_scan(saved)
            self.timings["scan"] = time.perf_counter() - started
            return
        needs_spill = self.pool.is_text or self.one_shot
        if needs_spill:
            self.spill = _Spill(self.work.path("vectors.bin"))
        finder = DuplicateFinder(self.work.path("hashes"), memory_rows=self._dedup_memory_rows())
        shard_rows = [0] * len(self.pool.shards)
        float32 = True
        total = 0
        bar = self._bar(None, "scan")
        # Text formats infer each piece's column types: the output's come from all of them.
        schemas: list = []
        typed_by_pieces = self.pool.fmt in ("jsonl", "csv", "tsv") and not self.one_shot
        try:
            for chunk in self.pool.chunks(vectors=True, table=typed_by_pieces):
                x = chunk.vectors
                assert x is not None
                if chunk.table is not None and (not schemas or not chunk.table.schema.equals(schemas[-1])):
                    schemas.append(chunk.table.schema)
                if chunk.shard >= len(shard_rows):  # batches of a callable: one shard
                    shard_rows.extend([0] * (chunk.shard + 1 - len(shard_rows)))
                shard_rows[chunk.shard] += chunk.n_rows
                float32 = float32 and x.dtype in (np.float32, np.float16)
                if chunk.texts is not None:  # text: the same text is the duplicate (see dedup)
                    finder.add_hashes(*text_hashes(chunk.texts), total)
                else:
                    finder.add(x, total)
                if self.spill is not None:
                    self.spill.append(x if x.dtype != np.float16 else x.astype(np.float32))
                total += chunk.n_rows
                if bar is not None:
                    bar.update(chunk.n_rows)
        except BaseException:
            finder.close()
            raise
        finally:
            if bar is not None:
                bar.close()
            if self.spill is not None:
                self.spill.finish()
        if total == 0:
            raise _core.GioError(f"{self.pool.name}: has no rows")
        self.duplicates = finder.finish()
        self.shard_rows = shard_rows
        self.pool_rows = total
        self.dim = int(self.pool.dim)
        self.dtype = np.dtype(np.float32 if float32 else np.float64)
        if self.spill is not None:
            self.spill.dtype = np.dtype(self.spill.dtype)
        self._finish_offsets()
        self.schema = None
        if schemas:
            with io.reader_errors(self.pool.shards[0].path, self.pool.fmt):
                self.schema = io._pyarrow().unify_schemas(schemas, promote_options="permissive")
        np.save(self.work.path("duplicates.npy"), np.stack([self.duplicates.rows, self.duplicates.first]))
        meta = {
            "shard_rows": shard_rows,
            "dim": self.dim,
            "dtype": str(self.dtype),
            "spill": self.spill.meta() if self.spill is not None else None,
            "schema": None
            if self.schema is None
            else base64.b64encode(self.schema.serialize().to_pybytes()).decode(),
        }
        files = ["duplicates.npy"] + (["vectors.bin"] if self.spill is not None else [])
        if self.work.resumable and not self.one_shot:
            self.work.save("scan", self.scan_key, meta, files)
        self.timings["scan"] = time.perf_counter() - started
        self.report(
            f"scan: {total} pool rows of dimension {self.dim} in {len(self.pool.shards)} file(s), "
            f"{len(self.duplicates)} exact duplicate rows, {self.timings['scan']:.1f} s"
        )

    def _load_scan(self, saved: dict) -> None:
        self.shard_rows = [int(n) for n in saved["shard_rows"]]
        self.pool_rows = int(sum(self.shard_rows))
        self.dim = int(saved["dim"])
        self.dtype = np.dtype(saved["dtype"])
        self.pool.dim = self.dim
        pairs = np.load(self.work.path("duplicates.npy"))
        self.duplicates = Duplicates(pairs[0].astype(np.int64), pairs[1].astype(np.int64))
        if saved.get("spill"):
            self.spill = _Spill.from_meta(self.work.path("vectors.bin"), saved["spill"])
        self.schema = None
        if saved.get("schema"):
            pa = io._pyarrow()
            self.schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(saved["schema"])))
        self._finish_offsets()

    def _finish_offsets(self) -> None:
        self.shard_offsets = np.concatenate([[0], np.cumsum(self.shard_rows)]).astype(np.int64).tolist()
        self.dropped = self.duplicates.rows if self.options["dedup"] == "exact" else np.zeros(0, np.int64)
        self.kept_rows = self.pool_rows - len(self.dropped)

    # The two sizes below follow the resident memory: they set when hashes spill to partition
    # files and how long the explode's sort runs are, which change speed and memory, not results.
    def _dedup_memory_rows(self) -> int:
        budget = memory.memory_budget()
        if budget is None:
            return 4 << 20
        room = max(0, budget - _rss_bytes())
        return int(max(1 << 14, min(4 << 20, room // 16 // 96)))

    def _kept_mask(self, start: int, n: int) -> np.ndarray:
        keep = np.ones(n, dtype=bool)
        lo, hi = np.searchsorted(self.dropped, [start, start + n])
        keep[self.dropped[lo:hi] - start] = False
        return keep

    # -- 2. target ----------------------------------------------------------------------------

    def target(self) -> None:
        opts = self.options
        started = time.perf_counter()
        k_target = opts["n_clusters_target"]
        k_target = (
            opts["n_clusters"] if k_target is None else check_int("n_clusters_target", k_target, minimum=1)
        )
        self.target_key = key_of(
            "target",
            _fingerprint(self.target_value, "target") if self.work.resumable else None,
            {
                k: _plain(opts.get(k))
                for k in ("target_format", "features_col", "feature_columns", "text_column")
            },
            k_target,
            opts["seed"],
            opts["kmeans_max_iter"],
        )
        saved = self._stage("target", self.target_key)
        if saved is not None:
            self.target_centers = np.load(self.work.path("target_centers.npy"))
            pairs = np.load(self.work.path("target_duplicates.npy"))
            self.target_duplicates = Duplicates(pairs[0].astype(np.int64), pairs[1].astype(np.int64))
            self.target_rows = int(saved["rows"])
            self.timings["target"] = time.perf_counter() - started
            return
        name = opts.get("target_name", "target")
        x, texts = _read_whole_with_texts(self.target_value, name, opts, "target_format")
        same_columns(name, x, opts.get("train_name", "train"), self.dim)
        self.target_rows = len(x)
        x, self.target_duplicates = drop_duplicates(x, name, texts)
        if len(x) < 2:
            raise _core.GioError(f"{opts.get('target_name', 'target')}: needs at least 2 distinct rows")
        if k_target >= len(x):
            centers = np.asarray(x)
        else:
            seed = opts["seed"]
            model = KMeans(
                k_target,
                max_iter=opts["kmeans_max_iter"],
                random_state=None if seed is None else seed + 1,
                progress=self.progress,
            ).fit(x)
            centers = model.cluster_centers_
        self.target_centers = np.asarray(centers)
        np.save(self.work.path("target_centers.npy"), self.target_centers)
        td = self.target_duplicates
        np.save(self.work.path("target_duplicates.npy"), np.stack([td.rows, td.first]))
        if self.work.resumable:
            self.work.save("target", self.target_key, {"rows": self.target_rows},
                           ["target_centers.npy", "target_duplicates.npy"])  # fmt: skip
        self.timings["target"] = time.perf_counter() - started
        self.report(
            f"target: {self.target_rows} rows, {len(self.target_centers)} target points "
            f"({self.timings['target']:.1f} s)"
        )

    # -- 3. kmeans ----------------------------------------------------------------------------

    def sample_size(self) -> int:
        """Rows K-Means is fitted on: `kmeans_sample_rows`, else every kept row when that fits
        the memory budget, else as many as fit (gio_rs.sampling). Never measured: the same
        inputs, options and budget give the same number (with the "auto" budget, the memory
        available when the stage starts, it depends on the machine and the moment)."""
        opts = self.options
        if opts["kmeans_sample_rows"] is not None:
            wanted = check_int("kmeans_sample_rows", opts["kmeans_sample_rows"], minimum=1)
            if wanted < self.k:
                raise _core.GioError(f"kmeans_sample_rows: {wanted} rows cannot hold {self.k} clusters")
            return min(wanted, self.kept_rows)
        # Held meanwhile: the runtime, the centroids, one batch's labelling, the target's
        # centroids and the duplicates' row numbers; all fixed by the inputs and options.
        reserved = (
            RUNTIME_ALLOWANCE
            + _core.assign_bytes(self.batch_rows, self.dim, self.k)
            + 16 * self.k * self.dim
            + self.target_centers.nbytes
            + 24 * len(self.duplicates)
        )
        return sampling.fitting_sample_size(
            self.kept_rows, self.dim, self.k, self.dtype.itemsize, reserved=reserved, share=_SAFETY
        )

    def kmeans(self) -> None:
        opts = self.options
        started = time.perf_counter()
        self.k = check_int("n_clusters", opts["n_clusters"], minimum=1)
        if self.k > self.kept_rows:
            raise _core.GioError(
                f"n_clusters: {self.k} clusters need at least {self.k} rows, the pool has {self.kept_rows}"
            )
        size = self.sample_size()
        self.kmeans_key = key_of(
            "kmeans", self.scan_key, opts["dedup"], self.k, opts["seed"], opts["kmeans_max_iter"], size
        )
        saved = self._stage("kmeans", self.kmeans_key)
        if saved is not None:
            self.centers = np.load(self.work.path("centers.npy"))
            self.sample_rows = int(saved["sample_rows"])
            self.kmeans_inertia = float(saved["inertia"])
            self.kmeans_iterations = int(saved["n_iter"])
            self.sample_labels = np.load(self.work.path("sample_labels.npy")) if saved["every_row"] else None
            self.timings["kmeans"] = time.perf_counter() - started
            return
        rows = sampling.sample_rows(self.pool_rows, size, opts["seed"], self.dropped)
        sample = np.empty((len(rows), self.dim), dtype=self.dtype)
        filled = 0
        bar = self._bar(self.pool_rows, "K-Means sample")
        for start, chunk in self.pool_chunks(table=False):
            lo, hi = np.searchsorted(rows, [start, start + chunk.n_rows])
            if hi > lo:
                assert chunk.vectors is not None
                sample[filled : filled + hi - lo] = chunk.vectors[rows[lo:hi] - start]
                filled += hi - lo
            if bar is not None:
                bar.update(chunk.n_rows)
        if bar is not None:
            bar.close()
        read_seconds = time.perf_counter() - started
        seed = opts["seed"]
        model = KMeans(self.k, max_iter=opts["kmeans_max_iter"], random_state=seed, progress=self.progress)
        model.fit(sample)
        del sample
        self.centers = model.cluster_centers_
        self.sample_rows = len(rows)
        self.kmeans_inertia = model.inertia_
        self.kmeans_iterations = model.n_iter_
        every_row = len(rows) == self.kept_rows
        # On every row the fit's own labels are the answer (no assignment pass needed).
        self.sample_labels = model.labels_.astype(np.int32) if every_row else None
        np.save(self.work.path("centers.npy"), self.centers)
        files = ["centers.npy"]
        if every_row:
            np.save(self.work.path("sample_labels.npy"), self.sample_labels)
            files.append("sample_labels.npy")
        if self.work.resumable:
            meta = {"sample_rows": self.sample_rows, "inertia": self.kmeans_inertia,
                    "n_iter": self.kmeans_iterations, "every_row": every_row}  # fmt: skip
            self.work.save("kmeans", self.kmeans_key, meta, files)
        self.timings["kmeans"] = time.perf_counter() - started
        where = "every pool row" if every_row else f"a seeded sample of {len(rows)} of {self.kept_rows} rows"
        self.report(
            f"kmeans: K = {self.k} on {where}, {self.kmeans_iterations} iterations, inertia "
            f"{self.kmeans_inertia:.6g} ({read_seconds:.1f} s reading, {self.timings['kmeans']:.1f} s in all)"
        )

    # -- 4. labels ----------------------------------------------------------------------------

    def labels(self) -> None:
        started = time.perf_counter()
        self.labels_key = key_of("labels", self.kmeans_key)
        self.label_file = _Labels(self.work.path("labels.i32"))
        saved = self._stage("labels", self.labels_key)
        if saved is not None:
            self.sizes = np.asarray(saved["sizes"], dtype=np.int64)
            self.pool_inertia = float(saved["inertia"])
            self.timings["labels"] = time.perf_counter() - started
            return
        centers64 = np.ascontiguousarray(self.centers, dtype=np.float64)
        sizes = np.zeros(self.k, dtype=np.int64)
        inertia = 0.0
        if self.sample_labels is not None:
            labels = np.full(self.pool_rows, -1, dtype=np.int32)
            keep = np.ones(self.pool_rows, dtype=bool)
            keep[self.dropped] = False
            labels[keep] = self.sample_labels
            labels.tofile(self.label_file.path)
            sizes = np.bincount(self.sample_labels, minlength=self.k).astype(np.int64)
            inertia = self.kmeans_inertia
            del labels, keep
        else:
            inertia, sizes = self._assign_pass(centers64)
        self.sizes, self.pool_inertia = sizes, inertia
        if self.work.resumable:
            meta = {"sizes": sizes.tolist(), "inertia": inertia}
            self.work.save("labels", self.labels_key, meta, ["labels.i32"])
        self.timings["labels"] = time.perf_counter() - started
        self.report(
            f"labels: {self.kept_rows} rows assigned to {self.k} centroids, inertia {inertia:.6g} "
            f"({self.timings['labels']:.1f} s)"
        )

    def _assign_pass(self, centers64: np.ndarray) -> tuple[float, np.ndarray]:
        """Assign every row, shard by shard; with a work dir, each finished shard is recorded so
        that an interrupted pass resumes at the next shard."""
        progress_name = "labels.progress.json"
        state = self.work.read_json(progress_name) if self.work.resumable else None
        start_shard, sizes, inertia = 0, np.zeros(self.k, dtype=np.int64), 0.0
        if (
            isinstance(state, dict)
            and state.get("key") == self.labels_key
            and not self.one_shot
            and os.path.exists(self.label_file.path)
        ):
            start_shard = int(state["shards_done"])
            sizes = np.asarray(state["sizes"], dtype=np.int64)
            inertia = float(state["inertia"])
            if start_shard:
                self.reused.append(f"labels of {start_shard} shard(s)")
                self.report(f"work dir: reusing the labels of the first {start_shard} shard(s)")
        done_rows = self.shard_offsets[start_shard]
        mode = "r+b" if start_shard else "wb"
        with open(self.label_file.path, mode) as fh:
            fh.truncate(done_rows * _LABEL_BYTES)
            fh.seek(done_rows * _LABEL_BYTES)
            bar = self._bar(self.pool_rows - done_rows, "labels")
            current = start_shard
            for start, chunk in self.pool_chunks(table=False, start_shard=start_shard):
                if chunk.shard != current and self.work.resumable:
                    self._checkpoint(fh, progress_name, chunk.shard, sizes, inertia)
                    current = chunk.shard
                x = chunk.vectors
                assert x is not None
                keep = self._kept_mask(start, chunk.n_rows)
                labels = np.full(chunk.n_rows, -1, dtype=np.int32)
                if keep.any():
                    rows = x if keep.all() else x[keep]
                    found, squared = _core.kmeans_assign(np.ascontiguousarray(rows), centers64)
                    labels[keep] = found
                    sizes += np.bincount(found, minlength=self.k)
                    inertia += float(squared.sum())
                fh.write(labels.tobytes())
                if bar is not None:
                    bar.update(chunk.n_rows)
            if bar is not None:
                bar.close()
        return inertia, sizes

    def _checkpoint(self, fh: Any, name: str, shards_done: int, sizes: np.ndarray, inertia: float) -> None:
        fh.flush()
        os.fsync(fh.fileno())
        self.work.write_json(
            name,
            {"key": self.labels_key, "shards_done": shards_done, "sizes": sizes.tolist(), "inertia": inertia},
        )

    # -- 5. selection -------------------------------------------------------------------------

    def select(self) -> None:
        from .selection import select as select_in_memory

        opts = self.options
        started = time.perf_counter()
        select_options = dict(opts["select_options"])
        init = opts.get("init")
        init_arr = None
        if init is not None:
            init_arr = _read_whole(init, "init", opts, "init_format")
            same_columns("init", init_arr, opts.get("train_name", "train"), self.dim)
        budget = opts["budget_rows"]
        self.selection_key = key_of(
            "selection",
            self.labels_key,
            self.target_key,
            _fingerprint(init, "init") if (self.work.resumable and init is not None) else None,
            {k: _plain(v) for k, v in select_options.items()},
            budget,
            opts["seed"],
        )
        saved = self._stage("selection", self.selection_key)
        if saved is not None:
            self.chosen = _selection_from_saved(saved, self.work)
            self.timings["selection"] = time.perf_counter() - started
            return
        centers, target_centers = self.centers, self.target_centers
        if budget is not None:
            budget = ranking.check_budget(budget, select_options)
            for name in ("max_iter", "stop_criterion", "max_data_size"):
                select_options.pop(name, None)
            chosen = ranking.choose_clusters(
                select_in_memory,
                centers,
                target_centers,
                self.sizes,
                budget,
                {**select_options, "init": init_arr, "seed": opts["seed"], "progress": self.progress},
            )
        else:
            chosen = select_in_memory(
                centers,
                target_centers,
                init=init_arr,
                seed=opts["seed"],
                progress=self.progress,
                **select_options,
            )
        self.chosen = chosen
        if self.work.resumable:
            _save_selection(self.work, "selection", self.selection_key, chosen)
        self.timings["selection"] = time.perf_counter() - started
        self.report(
            f"selection: {len(np.unique(chosen.indices))} clusters chosen ({chosen.stop_reason}), KL "
            f"{chosen.kl_start:.4g} -> {chosen.kl_final:.4g} ({self.timings['selection']:.1f} s)"
        )

    # -- 6. explode ---------------------------------------------------------------------------

    def explode(self) -> None:
        opts = self.options
        started = time.perf_counter()
        order = ranking.first_occurrences(self.chosen.indices)
        position = np.full(self.k, -1, dtype=np.int64)
        position[order] = np.arange(len(order))
        sizes = self.sizes[order]
        total = int(sizes.sum())
        budget = opts["budget_rows"]
        wanted = total if budget is None else min(int(budget), total)
        # Clusters past the one where the budget is reached contribute nothing.
        reach = np.cumsum(sizes)
        last = int(np.searchsorted(reach, wanted)) if wanted else -1
        position[order[last + 1 :]] = -1
        counts = np.asarray(sizes[: last + 1])
        cumulative = np.concatenate([[0], np.cumsum(counts)])
        target64 = np.ascontiguousarray(self.target_centers, dtype=np.float64)
        out = opts.get("out")
        row_bytes = self._row_bytes(out is not None)
        buckets = _Buckets(self.work, cumulative, self._bucket_bytes(), out is not None, row_bytes)
        bar = self._bar(self.pool_rows, "explode")
        try:
            for start, chunk in self.pool_chunks(table=out is not None):
                labels = self.label_file.read(start, chunk.n_rows)
                pos = np.where(labels >= 0, position[np.maximum(labels, 0)], -1)
                picked = np.flatnonzero(pos >= 0)
                if len(picked):
                    assert chunk.vectors is not None
                    distances = ranking.nearest_distances(chunk.vectors[picked], target64)
                    rows = start + picked
                    table = None
                    if out is not None:
                        table = self._output_rows(chunk, picked, rows, labels[picked])
                    buckets.add(pos[picked], distances, rows, labels[picked].astype(np.int64), table)
                if bar is not None:
                    bar.update(chunk.n_rows)
        except BaseException:
            buckets.close()
            raise
        finally:
            if bar is not None:
                bar.close()
        indices, cluster_of_row = [], []
        writer = None
        if out is not None:
            writer = RowWriter(
                out,
                opts.get("out_format"),
                overwrite=opts["overwrite"],
                shard_bytes=opts.get("shard_bytes"),
                vector_col=None if self.pool.is_text else self._vector_column(),
                text_col=(self.pool.text_column or "sentence") if self.pool.is_text else None,
                n_rows=wanted,
                empty_shape=(self.dim, self.dtype),
            )
        try:
            for ranked_rows, ranked_clusters, table in buckets.ranked(wanted):
                indices.append(ranked_rows)
                cluster_of_row.append(ranked_clusters)
                if writer is not None and table is not None:
                    writer.write(table)
            if writer is not None:
                writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            buckets.close()
        self.indices = np.concatenate(indices) if indices else np.zeros(0, np.int64)
        self.cluster_of_row = np.concatenate(cluster_of_row) if cluster_of_row else np.zeros(0, np.int64)
        self.output = None
        if writer is not None:
            self.output = {"path": os.fspath(out), "format": writer.fmt, "rows": writer.rows_written,
                           "parts": len(writer.parts) if writer.folder else 1}  # fmt: skip
        self.timings["explode"] = time.perf_counter() - started
        self.report(
            f"explode: {len(self.indices)} rows from {last + 1} clusters"
            + (f", written to {out}" if out is not None else "")
            + f" ({self.timings['explode']:.1f} s)"
        )

    def _vector_column(self) -> str:
        if self.pool.features_col is not None:
            return self.pool.features_col
        return "_c2" if self.pool.fmt == "reference-tsv" else "features"

    def _row_bytes(self, tables: bool) -> float:
        """Memory a picked row takes while it waits to be sorted: its keys, and with an output
        its columns, measured (twice, for the copies a sort makes) on the pool's first piece."""
        keys = 40.0
        if not tables:
            return keys
        for _, chunk in self.pool_chunks(table=True):
            if chunk.n_rows and chunk.table is not None:
                return keys + 2.0 * chunk.table.nbytes / chunk.n_rows
            break
        return keys + 2.0 * self.dim * self.dtype.itemsize

    def _bucket_bytes(self) -> int:
        budget = memory.memory_budget()
        if budget is None:
            return 1 << 30
        return int(max(16 << 20, (budget - _rss_bytes()) // 4))

    def _output_rows(self, chunk: Chunk, picked: np.ndarray, rows: np.ndarray, labels: np.ndarray) -> Any:
        pa = io._pyarrow()
        table = chunk.table.take(pa.array(picked))
        if self.schema is not None:
            with io.reader_errors(self.pool.shards[chunk.shard].path, self.pool.fmt):
                table = conform(table, self.schema)
        for name in (io.ROW_INDEX_COLUMN, io.CLUSTER_COLUMN, RANK_COLUMN):
            if name in table.column_names:
                raise _core.GioError(
                    f"{self.pool.shards[chunk.shard].path}: already has a column {name!r}, which the "
                    "output adds"
                )
        table = table.append_column(io.ROW_INDEX_COLUMN, pa.array(rows, pa.int64()))
        return table.append_column(io.CLUSTER_COLUMN, pa.array(labels.astype(np.int64), pa.int64()))

    def result(self) -> StreamSelection:
        chosen = self.chosen
        return StreamSelection(
            indices=self.indices,
            cluster_of_row=self.cluster_of_row,
            clusters=np.asarray(chosen.indices, dtype=np.int64),
            repeated_clusters=_repeated(chosen.indices),
            selection=chosen,
            centers=self.centers,
            target_centers=self.target_centers,
            pool_rows=self.pool_rows,
            kept_rows=self.kept_rows,
            sample_rows=self.sample_rows,
            kmeans_inertia=self.kmeans_inertia,
            kmeans_iterations=self.kmeans_iterations,
            pool_inertia=self.pool_inertia,
            duplicates=self.duplicates,
            target_duplicates=self.target_duplicates,
            dedup=self.options["dedup"],
            output=self.output,
            reused=list(self.reused),
            timings=dict(self.timings),
            peak_rss_bytes=peak_rss_bytes(),
        )


def _repeated(chosen: np.ndarray) -> np.ndarray:
    values, counts = np.unique(np.asarray(chosen, dtype=np.int64), return_counts=True)
    repeated = set(values[counts > 1].tolist())
    return np.array([c for c in ranking.first_occurrences(chosen).tolist() if c in repeated], dtype=np.int64)


def _save_selection(work: WorkDir, stage: str, key: str, chosen: Any) -> None:
    arrays = {"indices": chosen.indices, "kl_trace": chosen.kl_trace, "candidate_kl": chosen.candidate_kl}
    np.savez(work.path("selection.npz"), **arrays)
    meta = {
        "kl_start": chosen.kl_start,
        "stop_reason": chosen.stop_reason,
        "scale_factor": chosen.scale_factor,
        "n_resets": chosen.n_resets,
    }
    work.save(stage, key, meta, ["selection.npz"])


def _selection_from_saved(meta: dict, work: WorkDir) -> Any:
    from .selection import Selection

    with np.load(work.path("selection.npz")) as saved:
        return Selection(
            indices=saved["indices"],
            kl_trace=saved["kl_trace"],
            kl_start=float(meta["kl_start"]),
            stop_reason=str(meta["stop_reason"]),
            candidate_kl=saved["candidate_kl"],
            init=np.zeros((0, 0)),
            init_indices=None,
            scale_factor=float(meta["scale_factor"]),
            n_resets=int(meta["n_resets"]),
        )


class _Buckets:
    """The explode's rows, grouped by rank range so that each group fits in memory: the rank
    space (`cumulative`: first rank of each cluster position) is cut at cluster boundaries into
    groups of about `bucket_bytes`; one group stays in memory, more go to Arrow files in the
    work dir. `ranked(n)` yields each group sorted by (position, distance, row), cut at n rows."""

    def __init__(
        self, work: WorkDir, cumulative: np.ndarray, bucket_bytes: int, tables: bool, row_bytes: float
    ):
        self.work = work
        self.cumulative = cumulative
        total_rows = int(cumulative[-1]) if len(cumulative) else 0
        per_bucket = max(1, int(bucket_bytes / max(row_bytes, 1.0)))
        per_bucket = max(per_bucket, -(-total_rows // _MAX_BUCKETS))  # open files stay few
        # bucket of each cluster position: rank of its first row // rows per bucket
        self.bucket_of_position = (
            (cumulative[:-1] // per_bucket).astype(np.int64) if total_rows else np.zeros(0, np.int64)
        )
        self.n_buckets = int(self.bucket_of_position.max()) + 1 if len(self.bucket_of_position) else 0
        self.parts: dict[int, list] = {}
        self.files: dict[int, Any] = {}
        self.spill = self.n_buckets > 1
        self.tables = tables

    def add(
        self, positions: np.ndarray, distances: np.ndarray, rows: np.ndarray, clusters: np.ndarray, table: Any
    ) -> None:
        pa = io._pyarrow() if (self.tables or self.spill) else None
        buckets = self.bucket_of_position[positions]
        for bucket in np.unique(buckets).tolist():
            mask = buckets == bucket
            piece = {
                "position": positions[mask],
                "distance": distances[mask],
                "row": rows[mask],
                "cluster": clusters[mask],
            }
            piece_table = None
            if table is not None:
                piece_table = table.filter(pa.array(mask)) if not mask.all() else table
            if not self.spill:
                self.parts.setdefault(bucket, []).append((piece, piece_table))
                continue
            assert pa is not None
            columns = {
                _POSITION: pa.array(piece["position"]),
                _DISTANCE: pa.array(piece["distance"]),
                "_gio_row": pa.array(piece["row"]),
                "_gio_cluster": pa.array(piece["cluster"]),
            }
            record = pa.table(columns)
            if piece_table is not None:
                for name in piece_table.column_names:
                    record = record.append_column(name, piece_table.column(name))
            self._write(bucket, record)

    def _write(self, bucket: int, record: Any) -> None:
        pa = io._pyarrow()
        if bucket not in self.files:
            path = self.work.path(f"explode-{bucket:05d}.arrow")
            sink = pa.OSFile(path, "wb")
            self.files[bucket] = (path, sink, pa.ipc.new_stream(sink, record.schema), record.schema)
        path, sink, writer, schema = self.files[bucket]
        if not record.schema.equals(schema):
            from .writers import conform

            record = conform(record, schema)
        writer.write_table(record)

    def ranked(self, wanted: int) -> Iterator[tuple[np.ndarray, np.ndarray, Any]]:
        pa = io._pyarrow() if (self.tables or self.spill) else None
        emitted = 0
        for bucket in range(self.n_buckets):
            if emitted >= wanted:
                break
            if self.spill:
                if bucket not in self.files:
                    continue
                path, sink, writer, _ = self.files.pop(bucket)
                writer.close()
                sink.close()
                with pa.memory_map(path, "r") as source:
                    record = pa.ipc.open_stream(source).read_all()
                os.remove(path)
                positions = record.column(_POSITION).to_numpy()
                distances = record.column(_DISTANCE).to_numpy()
                rows = record.column("_gio_row").to_numpy()
                clusters = record.column("_gio_cluster").to_numpy()
                table = (
                    record.drop_columns([_POSITION, _DISTANCE, "_gio_row", "_gio_cluster"])
                    if self.tables
                    else None
                )
            else:
                pieces = self.parts.pop(bucket, [])
                if not pieces:
                    continue
                positions = np.concatenate([p["position"] for p, _ in pieces])
                distances = np.concatenate([p["distance"] for p, _ in pieces])
                rows = np.concatenate([p["row"] for p, _ in pieces])
                clusters = np.concatenate([p["cluster"] for p, _ in pieces])
                table = None
                if self.tables:
                    table = pa.concat_tables([t for _, t in pieces], promote_options="permissive")
            order = np.lexsort((rows, distances, positions))[: wanted - emitted]
            ranks = np.arange(emitted, emitted + len(order), dtype=np.int64)
            if table is not None:
                table = table.take(pa.array(order)).append_column(RANK_COLUMN, pa.array(ranks))
            emitted += len(order)
            yield rows[order], clusters[order], table

    def close(self) -> None:
        for path, sink, writer, _ in self.files.values():
            try:
                writer.close()
                sink.close()
            except Exception:  # noqa: S110 - cleaning up after a failure
                pass
            if os.path.exists(path):
                os.remove(path)
        self.files = {}
        self.parts = {}


def select_stream(
    train: Any,
    target: Any,
    *,
    n_clusters: int,
    n_clusters_target: Optional[int] = None,
    init: Any = None,
    budget_rows: Optional[int] = None,
    out: Any = None,
    out_format: Optional[str] = None,
    shard_bytes: Optional[int] = None,
    overwrite: bool = False,
    dedup: str = "exact",
    kmeans_sample_rows: Optional[int] = None,
    kmeans_max_iter: int = 300,
    seed: Optional[int] = 0,
    work_dir: Any = None,
    features_col: Optional[str] = None,
    feature_columns: Optional[list] = None,
    text_column: Optional[str] = None,
    train_format: Optional[str] = None,
    target_format: Optional[str] = None,
    init_format: Optional[str] = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: bool = False,
    report: Optional[Callable[[str], None]] = None,
    embed_options: Optional[dict] = None,
    train_name: str = "train",
    target_name: str = "target",
    **select_options: Any,
) -> StreamSelection:
    """GIO at scale on a pool read in pieces (see the module docstring for the stages).

    Parameters
    ----------
    train : path, list of paths, array, list of arrays, callable or iterator of batches
        The pool.
    target, init : path or array
        Read whole. `init`: rows already selected (D), passed to the selection among centroids.
    n_clusters, n_clusters_target, kmeans_max_iter, seed : as `gio_rs.select` (the pool's K-Means
        is seeded with `seed`, the target's with `seed + 1`; the selection with `seed`).
    budget_rows : int, optional
        Exactly this many pool rows (fewer only when the pool has fewer), see `gio_rs.ranking`.
    out, out_format, shard_bytes, overwrite : where to write the selected rows (a file, or a
        folder ending in "/" for part files of about `shard_bytes`; see `gio_rs.writers`); with
        `out=None` only the indices are returned.
    dedup : "exact" (default) or "none": leave exact duplicate pool rows out, or keep them.
    kmeans_sample_rows : int, optional
        Fit K-Means on this many sampled rows (default: every row if it fits the memory budget,
        else as many as fit, computed from the budget, the inputs and the options, never from the
        memory in use: an explicit budget gives the same sample on every run and machine).
    work_dir : path, optional
        Keep the stages here; a rerun with the same inputs and options reuses them.
    features_col, feature_columns, text_column, train_format, target_format, init_format : how to
        read the files (gio_rs.io).
    batch_rows : rows per piece read.
    progress : progress bars on stderr; report: called with one line per finished stage.
    train_name, target_name : what errors call the inputs (e.g. "--train").
    **select_options : any other option of `gio_rs.select` (k, stop_criterion, v_init, ...).
    """
    if not isinstance(dedup, str) or dedup not in DEDUP_MODES:
        raise _core.GioError(f"dedup: expected one of {DEDUP_MODES}, got {dedup!r}")
    if select_options.pop("callback", None) is not None:
        raise TypeError("callback: not supported by select_stream (progress=True shows the stages)")
    if seed is not None:
        seed = check_int(
            "seed", seed, minimum=0, maximum=2**32 - 1
        )  # as select (RandomState); seed + 1 seeds K-Means, which takes more
    if budget_rows is not None:
        ranking.check_budget(budget_rows, select_options)
    kmeans_max_iter = check_int("kmeans_max_iter", kmeans_max_iter, minimum=1)
    if out is not None:
        from .writers import check_output

        check_output(out, overwrite=overwrite)
    options = dict(
        n_clusters=n_clusters,
        n_clusters_target=n_clusters_target,
        init=init,
        budget_rows=budget_rows,
        out=out,
        out_format=out_format,
        shard_bytes=shard_bytes,
        overwrite=overwrite,
        dedup=dedup,
        kmeans_sample_rows=kmeans_sample_rows,
        kmeans_max_iter=kmeans_max_iter,
        seed=seed,
        work_dir=None if work_dir is None else os.fspath(work_dir),
        features_col=features_col,
        feature_columns=feature_columns,
        text_column=text_column,
        train_format=train_format,
        target_format=target_format,
        init_format=init_format,
        batch_rows=batch_rows,
        progress=bool(progress),
        report=report or (lambda line: None),
        embed_options=embed_options,
        train_name=train_name,
        target_name=target_name,
        select_options=select_options,
    )
    run = _Run(train, target, options)
    try:
        run.scan()
        run.target()
        run.kmeans()
        run.labels()
        run.select()
        run.explode()
        return run.result()
    finally:
        run.work.close()
