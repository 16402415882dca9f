"""mkdocs hooks: the docs pages are also read on GitHub, beside the rest of the repository.

- A relative link from a page to a repository file outside docs/ (``../BENCHMARKS.md``,
  ``../benches/run_all.py``) becomes a link to that file on GitHub (``repo_url``/blob/main/...);
  one to a path the repository does not have is a warning, so ``--strict`` fails on it, as mkdocs
  itself does for links between pages.
- ``<!-- include ../FILE.md -->`` on a line of its own is replaced by that file's text, its
  relative links rebased, and its headings one level down (a generated file such as BENCHMARKS.md
  stays where its generator writes it).
- docs/reference.md (the reference's exact semantics) joins the "Reference behaviour" section of
  the nav when it exists.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repository_files")

INCLUDE = re.compile(r"^<!-- include (\S+) -->$", re.MULTILINE)
# An inline link or image target: ](path) or ](path "title"); angle brackets and spaces aside.
LINK = re.compile(r"(\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,5}) ", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    if (docs / "reference.md").exists():
        for index, item in enumerate(config["nav"]):
            if isinstance(item, dict) and "Reference behaviour" in item:
                section = item["Reference behaviour"]
                pages = section if isinstance(section, list) else [{"What gio_rs fixes": section}]
                if "reference.md" not in str(pages):
                    pages.append({"The reference's exact semantics": "reference.md"})
                config["nav"][index] = {"Reference behaviour": pages}
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, **kwargs: Any) -> str:
    root = Path(config["config_file_path"]).resolve().parent
    docs = Path(config["docs_dir"]).resolve().relative_to(root).as_posix()
    source = f"{docs}/{page.file.src_uri}"

    def include(match: re.Match) -> str:
        included = posixpath.normpath(posixpath.join(posixpath.dirname(source), match.group(1)))
        path = root / included
        if included.startswith("../") or not path.is_file():
            log.warning(f"{source}: includes {match.group(1)}, which is not a file of the repository")
            return match.group(0)
        text = _rewrite_links(path.read_text(encoding="utf-8"), included, source, root, docs, config)
        return HEADING.sub(lambda h: "#" + h.group(0), text)

    markdown = INCLUDE.sub(include, markdown)
    return _rewrite_links(markdown, source, source, root, docs, config)


def _rewrite_links(text: str, written_in: str, shown_in: str, root: Path, docs: str, config: Any) -> str:
    """Links of `text` (a file at repository path `written_in`, shown on page `shown_in`)."""
    repo_url = config["repo_url"].rstrip("/")
    out, in_code = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            in_code = not in_code
        if not in_code:
            line = LINK.sub(lambda m: _link(m, written_in, shown_in, root, docs, repo_url), line)
        out.append(line)
    return "\n".join(out)


def _link(match: re.Match, written_in: str, shown_in: str, root: Path, docs: str, repo_url: str) -> str:
    target = match.group(2)
    if target.startswith(("#", "/")) or SCHEME.match(target):
        return match.group(0)
    path, _, anchor = target.partition("#")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(written_in), path))
    if resolved.startswith("../") or not (root / resolved).exists():
        log.warning(f"{written_in}: links to {target}, which is not in the repository")
        return match.group(0)
    if resolved == docs or resolved.startswith(docs + "/"):
        # A docs page: mkdocs checks it; rebase links of included files onto the showing page.
        if written_in == shown_in:
            return match.group(0)
        new = posixpath.relpath(resolved, posixpath.dirname(shown_in))
    else:
        kind = "tree" if (root / resolved).is_dir() else "blob"
        new = f"{repo_url}/{kind}/main/{resolved}"
    return f"{match.group(1)}{new}{'#' + anchor if anchor else ''}{match.group(3)}"
