"""Other libraries' error messages, trimmed to the line that says what went wrong."""

from __future__ import annotations

MESSAGE_CHARS = 500  # of a reader's own error message, in ours


def first_error_line(exc: BaseException) -> str:
    """The first line of an exception's message, shortened: Spark's errors carry a Java stack
    trace after it. py4j starts with "An error occurred while calling oNN.x.", then the
    Java exception, which is the line that says what went wrong."""
    lines = [line.strip().lstrip(":").strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("An error occurred while calling"):
        lines = lines[1:]
    text = lines[0] if lines else ""
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def os_error_line(exc: OSError) -> str:
    """An OS error as one line a user can act on: the file and what went wrong, without
    Python's "[Errno N]" (pyarrow's and NumPy's messages carry the errno in their text)."""
    import errno
    import os
    import re

    code = exc.errno
    if code is None:
        found = re.search(r"\[?errno (\d+)\]?", str(exc), re.IGNORECASE)
        code = int(found.group(1)) if found else None
    if code is not None:
        reason = os.strerror(code).lower()
    elif re.search(r"\d+ requested and \d+ written", str(exc)):
        reason = "a write was cut short (is the disk full?)"
    else:
        reason = first_error_line(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else None
    line = f"{where}: {reason}" if where else reason
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        line += " (free some space and run again: finished stages of a work dir are kept)"
    return line


def naming(exc: OSError, path: str) -> OSError:
    """`exc` with `path` as its file when it has none (a failed write of an open file does
    not say which file it was), so that `os_error_line` can name it."""
    if exc.filename is not None:
        return exc
    code = exc.errno
    if code is None:
        import re

        found = re.search(r"errno (\d+)", str(exc), re.IGNORECASE)
        code = int(found.group(1)) if found else None
    if code is None:
        return exc
    import os

    return OSError(code, os.strerror(code), path)


class GioWarning(UserWarning):
    """A gio_rs warning: the run goes on, but not quite as asked (e.g. a flat density ratio)."""
