"""The explode's rows grouped by rank range, sorted one group at a time (on disk when they do not
fit in memory together)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._util.optional import pyarrow
from ..io.formats import RANK_COLUMN
from ..io.workdir import WorkDir

_POSITION = "_gio_position"  # helper columns of the explode, dropped before writing
_DISTANCE = "_gio_distance"
_MAX_BUCKETS = 256  # of the budget left after what is already resident, planned for


class Buckets:
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
        pa = pyarrow() if (self.tables or self.spill) else None
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
        pa = pyarrow()
        if bucket not in self.files:
            path = self.work.path(f"explode-{bucket:05d}.arrow")
            sink = pa.OSFile(path, "wb")
            self.files[bucket] = (path, sink, pa.ipc.new_stream(sink, record.schema), record.schema)
        path, sink, writer, schema = self.files[bucket]
        if not record.schema.equals(schema):
            from ..io.writers import conform

            record = conform(record, schema)
        writer.write_table(record)

    def ranked(self, wanted: int) -> Iterator[tuple[np.ndarray, np.ndarray, Any]]:
        pa = pyarrow() if (self.tables or self.spill) else None
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
