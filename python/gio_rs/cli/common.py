"""What the commands share: the summary file's name and JSON, progress on or off."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .._util.files import atomic_write


def summary_path(out: str, summary: Optional[str]) -> str:
    if summary is not None:
        return summary
    p = Path(out)
    return str(p.with_name(p.stem + ".summary.json"))


def finite_or_none(value: float) -> Optional[float]:
    return float(value) if math.isfinite(value) else None


def floats(values: Any) -> list[Optional[float]]:
    return [finite_or_none(v) for v in np.asarray(values, dtype=np.float64).tolist()]


def show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and (args.progress or sys.stderr.isatty())


def write_json(path: str, data: dict[str, Any], *, overwrite: bool) -> None:
    """`data` as indented JSON (strict: no NaN), written whole or not at all."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write, overwrite=overwrite)
