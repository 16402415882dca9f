"""The docs site: every public name has an API page, the front-page example prints what the page
says it prints, and the strict build fails on a reference to a name that does not exist."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gio_rs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
LAZY_MODULES = ("gio_rs.embed", "gio_rs.spark", "gio_rs.generate_text_embeddings")


def public_names() -> list[str]:
    names = [f"gio_rs.{name}" for name in gio_rs.__all__]
    for module in LAZY_MODULES:
        names += [f"{module}.{name}" for name in importlib.import_module(module).__all__]
    return names


def test_every_public_name_has_an_api_page_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    for name in public_names():
        page = DOCS / "api" / f"{name}.md"
        assert page.is_file(), f"{name} has no API page ({page.relative_to(REPO)})"
        assert f"::: {name}\n" in page.read_text(), f"{page.relative_to(REPO)} does not document {name}"
        assert f"api/{name}.md" in nav, f"{page.relative_to(REPO)} is not in mkdocs.yml's nav"


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_front_page_example_prints_what_the_page_shows(page, tmp_path):
    text = (REPO / page).read_text()
    found = re.search(r"```python\n(.*?)```\n+```text\n(.*?)```", text, re.DOTALL)
    assert found, f"{page}: no ```python block followed by its ```text output"
    code, shown = found.groups()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown, f"{page}'s example now prints:\n{done.stdout}"


def _mkdocs_or_fail() -> None:
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("the docs extra is not installed (scripts/test.sh runs scripts/docs.sh first)")
        pytest.skip("needs the docs extra: scripts/docs.sh installs it")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout (the build is run on a copy of its files)")


def _copy_checkout(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for name in listed.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _build(checkout: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(checkout / "site")],
        cwd=checkout,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def _plant(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: {old!r} not found once; pick another anchor"
    path.write_text(text.replace(old, new))


def test_docs_build_fails_on_references_to_names_that_do_not_exist(tmp_path):
    _mkdocs_or_fail()
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    control = _build(checkout)
    assert control.returncode == 0, "the unmodified docs do not build:\n" + control.stderr

    summary = '"""Estimate KL(x ‖ y) with the averaged k-nearest-neighbour estimator.'
    _plant(
        checkout / "python" / "gio_rs" / "estimator.py",
        summary,
        summary + "\n\n    See `Selection.kl_trace_of_nothing`, `gio_rs.no_such_function` and"
        " [the missing one][gio_rs.no_such_class].",
    )
    heading = "# GIO explained\n"
    _plant(checkout / "docs" / "gio.md", heading, heading + "\n[gone](../no_such_file.md)\n")
    planted = _build(checkout)
    output = planted.stdout + planted.stderr
    assert planted.returncode != 0, output
    assert "`Selection.kl_trace_of_nothing` names nothing" in output, output
    assert "`gio_rs.no_such_function` names nothing" in output, output
    assert "gio_rs.no_such_class" in output, output
    assert "links to ../no_such_file.md, which is not in the repository" in output, output
    assert "warnings in strict mode" in output, output
