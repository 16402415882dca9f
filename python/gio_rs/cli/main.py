"""The dispatcher: parse the command line, run the command, turn errors and Ctrl-C into one
line and an exit status."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Optional

from .. import memory
from .._core import GioError
from .._util.errors import os_error_line
from .demo import run_demo
from .embed import run_embed
from .parser import EXIT_ERROR, EXIT_INTERRUPTED, build_parser
from .select import run_select


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def report(line: str) -> None:
        if not args.quiet:
            print(f"gio-rs: {line}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args, report)


def _one_line(message: Any) -> str:
    return " ".join(str(message).split()) or type(message).__name__


def _show_warning(message: Any, *args: Any, **kwargs: Any) -> None:
    """Warnings as one line, like errors (not Python's file:line and source line)."""
    print(f"gio-rs: warning: {_one_line(message)}", file=sys.stderr)


def _run(args: argparse.Namespace, report: Callable[[str], None]) -> int:
    try:
        budget = contextlib.nullcontext()
        if args.memory_budget is not None:
            limit = memory.parse_budget("--memory-budget", args.memory_budget)
            budget = memory.temporary_budget(limit, "--memory-budget")
        with budget:
            if args.command == "select":
                run_select(args, report=report)
            elif args.command == "embed":
                run_embed(args, report=report)
            else:
                run_demo(args, report=report)
    except KeyboardInterrupt:
        print("gio-rs: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    # Warning: a warning turned into an error (python -W error) is an error like the others.
    except (GioError, TypeError, ValueError, OSError, ImportError, Warning) as exc:
        text = os_error_line(exc) if isinstance(exc, OSError) else exc
        print(f"gio-rs: error: {_one_line(text)}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def entry_point() -> None:
    """Console script `gio-rs`."""
    sys.exit(main())
