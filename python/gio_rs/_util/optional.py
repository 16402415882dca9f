"""Optional dependencies, imported when first needed with an error that names the extra."""

from __future__ import annotations

from typing import Any


def pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "reading or writing parquet/CSV/TSV needs pyarrow: pip install 'gio_rs[io]'"
        ) from exc
    return pyarrow
