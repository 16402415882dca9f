"""The `gio-rs` command (also `python -m gio_rs`): GIO selection from files, without writing Python.

    gio-rs select --train POOL --target X [--init D] [--clusters K] [options] --out OUT
    gio-rs demo [--out DIR]

Every option of `gio_rs.select` is a flag (`--max-iter`, `--stop`, `--v-init`, `--budget-rows`,
...). The output holds the selected rows (all their columns, in rank order) plus `row_index`,
`rank` and, when quantised, `cluster`; a JSON summary is written next to it, and `--plot` draws the
KL trace and a 2-D view. With `--clusters` the pool is always read in pieces (gio_rs.stream:
memory bounded by `--memory-budget` whatever its size; `--work-dir` to resume); without, it is read
whole and selected in memory. Errors print one line naming the file or flag and exit with status
2; Ctrl-C exits with 130. Outputs are written to a temporary file and renamed, so nothing is left
half-written.
"""

from .main import entry_point, main
from .parser import EXIT_ERROR, EXIT_INTERRUPTED, build_parser

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "build_parser", "entry_point", "main"]
