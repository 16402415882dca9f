"""Embeddings in files: read a matrix of vectors (plus the file's other columns) from `.npy`,
parquet, Arrow IPC, jsonl, the reference's headerless TSV (`_c2` = JSON vector), CSV/TSV with a
header or `.txt` sentences, and write selected rows back out atomically. Used by the `gio-rs`
command; usable on its own.

Formats (by extension unless given): ``npy``; ``parquet`` (a file or a directory of parquet
files; an array column, default ``features``); ``arrow`` (``.arrow``/``.feather``/``.ipc``, the
IPC file or stream format; a Hugging Face ``datasets`` folder written by ``save_to_disk`` is a
folder of these); ``jsonl`` (``.jsonl``/``.ndjson``, also ``.gz``/``.zst``: one JSON object per
line, the vector a list field, default ``features``); ``reference-tsv`` (headerless,
tab-separated, the third column ``_c2`` a JSON list, as `grad-info-opt` reads it; a ``.tsv`` whose
first line looks like that is read this way); ``csv`` / ``tsv`` with a header, the vector either
a column of JSON lists (default ``features``, else ``_c2``) or numeric columns
(``feature_columns``, default every numeric column); ``text`` (``.txt``, embedded). A folder is a
dataset of shards of one format (`gio_rs.io.batches`). Everything but ``.npy`` needs pyarrow
(``pip install gio_rs[io]``); the jsonl decompression is pyarrow's own (gzip and zstd).
"""

from .._util.files import atomic_write, check_writable
from .columns import WHOLE_FILE, RowNames, check_vectors
from .formats import (
    CLUSTER_COLUMN,
    FORMATS,
    RANK_COLUMN,
    ROW_INDEX_COLUMN,
    check_input,
    reader_errors,
    warn_if_cut_short,
)
from .readers import Table, read_table
from .shards import detect_format
from .writers import file_output_format, output_format, selected_rows, write_selection

__all__ = [
    "CLUSTER_COLUMN", "FORMATS", "RANK_COLUMN", "ROW_INDEX_COLUMN", "WHOLE_FILE", "RowNames", "Table",
    "atomic_write", "check_input", "check_vectors", "check_writable", "detect_format", "file_output_format",
    "output_format", "read_table", "reader_errors", "selected_rows", "warn_if_cut_short", "write_selection",
]  # fmt: skip
