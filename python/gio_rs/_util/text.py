"""Lines of text as the reference's `readlines()` gives them, for every reader of `.txt` files."""

from __future__ import annotations


def split_lines(text: str) -> list[str]:
    """The lines of `text` without their breaks (\\n, \\r\\n or \\r); a final break does not add
    an empty line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the text after the last newline, unless the text does not end in one
    return lines
