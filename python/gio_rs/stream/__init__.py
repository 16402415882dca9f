"""GIO on a pool larger than memory, on one machine: quantise → select among centroids → explode,
over a pool read a piece at a time (gio_rs.io.batches), in memory bounded by the budget
(`gio_rs.memory`) whatever the number of rows.

    import gio_rs
    result = gio_rs.select_stream("pool/", "target.parquet", n_clusters=10_000,
                                  out="selected/", budget_rows=100_000, work_dir="work/")

The pool is a file or a folder of shards in any format `gio_rs.io.batches` reads (parquet, Arrow,
Hugging Face `datasets` folders, jsonl[.gz|.zst], CSV/TSV, .npy, .txt), a 2-D array (a
`np.memmap` is read a slice at a time), a list of arrays, a callable returning an iterator of
batches (called once per pass), or an iterator of batches (read once, copied to a spill file).

Stages, each reported (and, with `work_dir`, kept and reused by a rerun with the same inputs and
options, which says so):

1. scan: one pass over the pool. Every vector is checked (dimension, NaN/inf, null; the error
   names the file and row or line, before anything is written), counted and hashed for exact
   duplicates (`gio_rs.io.dedup`); text is embedded once and spilled to disk.
2. target: read whole (the small side), exact duplicates dropped with a warning (they make the
   estimator's ρ zero), quantised as `gio_rs.quantize` does.
3. kmeans: K-Means (`gio_rs.KMeans`, seeded) fitted on every pool row when its working set fits
   the budget, else on a seeded uniform sample of as many rows as fit (`kmeans_sample_rows` sets
   the number). How many fit is computed from the budget, the inputs and the options with a fixed
   model of the runtime (`gio_rs.memory.RUNTIME_FOOTPRINT`), never from the memory in use, so an
   explicit budget or `kmeans_sample_rows` pins the sample; with the default "auto" budget
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

With `method="ratio"` (and `budget_rows`) the density-ratio selection runs instead, in two reads
(gio_rs.stream.ratio_run): the scan also accumulates the pool's summary, the ratio is fitted, a
scoring pass keeps the top rows, which are written ranked; the rows are those of
`gio_rs.select(method="ratio")`.

Memory: the budget bounds the whole process's peak resident memory (`gio_rs.memory`). Each stage
measures what the process holds when it starts and refuses, naming the stage, the quantity and the
largest setting that fits, when its need does not fit beside it (`stream.resources`). Held: the
K-Means sample (or the whole pool when it fits), one batch of rows, the centroids, the target, and
24 bytes per duplicate row; the labels, the hashes and the output waiting to be sorted go to disk
(the work dir, else a temporary folder beside the output).
"""

from .ratio_run import RatioStreamSelection
from .resources import peak_rss_bytes
from .result import StreamSelection
from .run import DEDUP_MODES, select_stream

__all__ = [
    "DEDUP_MODES",
    "RatioStreamSelection",
    "StreamSelection",
    "peak_rss_bytes",
    "select_stream",
]
