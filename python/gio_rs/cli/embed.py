"""`gio-rs embed`: sentences in, float32 embeddings out (npy or parquet)."""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from .. import io
from .._core import GioError
from .._util.optional import pyarrow
from ..io.writers import file_output_format
from .common import show_progress


def run_embed(args: argparse.Namespace, *, report: Callable[[str], None]) -> None:
    """The `embed` command: sentences in, float32 embeddings out (npy or parquet)."""
    from .. import embed

    io.check_writable(args.out, overwrite=args.overwrite)
    out_format = file_output_format(args.out)
    if out_format not in ("npy", "parquet"):
        raise GioError(f"--out: embeddings are written as .npy or .parquet, got {args.out}")
    # One row per line: an empty file gives none (unlike `select`, which needs rows to select).
    with io.reader_errors(args.input, "text"):
        sentences = embed.read_sentences(args.input)
    started = time.perf_counter()
    vectors = embed.embed(
        sentences, model=args.model, batch_size=args.batch_size, progress=show_progress(args)
    )
    seconds = time.perf_counter() - started
    if out_format == "npy":

        def save(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, vectors, allow_pickle=False)

        io.atomic_write(args.out, save, overwrite=args.overwrite)
    else:
        pa = pyarrow()
        table = pa.table(
            {
                "sentence": pa.array(sentences, pa.string()),
                "features": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1)), vectors.shape[1]
                ),
            }
        )
        io.atomic_write(args.out, lambda tmp: pa.parquet.write_table(table, tmp), overwrite=args.overwrite)
    report(f"embedded {len(sentences)} sentences in {seconds:.2f} s; wrote {args.out}")
