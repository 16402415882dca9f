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


class GioWarning(UserWarning):
    """A gio_rs warning: the run goes on, but not quite as asked (e.g. a flat density ratio)."""
