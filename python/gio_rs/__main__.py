"""`python -m gio_rs ...` runs the `gio-rs` command."""

from .cli import entry_point

if __name__ == "__main__":
    entry_point()
