"""The package's layout rules that import-linter does not check (docs/architecture.md): no module
imports another module's `_private` name, nothing but submodules is imported from the `gio_rs`
facade inside the package, and no function is over 80 lines or class over 300 (docstrings
aside; the NumPy oracle `reference.py` is exempt). The layers themselves are import-linter's
contract in pyproject.toml, run by scripts/test.sh."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "gio_rs"
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 300
EXEMPT_FROM_SIZES = {"reference.py"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ImportFrom reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def submodules() -> set[str]:
    return {p.stem if p.suffix else p.name for p in PACKAGE.iterdir() if not p.name.startswith(".")} | {
        "_core"
    }


def import_problems(source: str, module: str, is_package: bool = False) -> list[str]:
    """Private names taken from another gio_rs module (imported, or read as `module._name`),
    and anything but a submodule imported from the gio_rs package itself."""
    problems = []
    module_aliases: dict[str, str] = {}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gio_rs.") and alias.asname:
                    module_aliases[alias.asname] = alias.name
        if not isinstance(node, ast.ImportFrom):
            continue
        source_module = resolve(node, module, is_package)
        if source_module != "gio_rs" and not source_module.startswith("gio_rs."):
            continue
        for alias in node.names:
            where = f"{module}:{node.lineno}"
            if source_module == "gio_rs" and alias.name not in submodules():
                problems.append(f"{where} imports {alias.name!r} from the gio_rs facade")
            if source_module == "gio_rs" or is_private(alias.name):
                module_aliases[alias.asname or alias.name] = f"{source_module}.{alias.name}"
            if is_private(alias.name) and alias.name != "_core" and not source_module.endswith("._core"):
                problems.append(f"{where} imports the private name {alias.name} from {source_module}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = module_aliases.get(node.value.id)
            if target and not target.endswith("._core") and is_private(node.attr):
                problems.append(f"{module}:{node.lineno} reads the private name {node.attr} of {target}")
    return problems


def lines_without_docstrings(node: ast.AST) -> int:
    lines = set(range(node.lineno, node.end_lineno + 1))
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    lines -= set(range(first.lineno, first.end_lineno + 1))
    return len(lines)


def size_problems(source: str, module: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            limit, kind = MAX_FUNCTION_LINES, "function"
        elif isinstance(node, ast.ClassDef):
            limit, kind = MAX_CLASS_LINES, "class"
        else:
            continue
        size = lines_without_docstrings(node)
        if size > limit:
            problems.append(f"{module}:{node.lineno} {kind} {node.name} has {size} lines (> {limit})")
    return problems


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_found():
    names = {module_name(p) for p in SOURCES}
    assert {"gio_rs", "gio_rs.io", "gio_rs.stream", "gio_rs.cli", "gio_rs._util"} <= names


def test_no_private_name_crosses_a_module():
    problems = []
    for path in SOURCES:
        problems += import_problems(path.read_text(), module_name(path), path.name == "__init__.py")
    assert problems == []


def test_no_function_over_80_lines_or_class_over_300():
    problems = []
    for path in SOURCES:
        if path.relative_to(PACKAGE).as_posix() not in EXEMPT_FROM_SIZES:
            problems += size_problems(path.read_text(), module_name(path))
    assert problems == []


@pytest.mark.parametrize(
    ("module", "source", "found"),
    [
        ("gio_rs.selection", "from .io.readers import _read\n", "private name _read from gio_rs.io.readers"),
        (
            "gio_rs.cli.main",
            "from .. import io\nio._pyarrow()\n",
            "reads the private name _pyarrow of gio_rs.io",
        ),
        (
            "gio_rs.cli.main",
            "import gio_rs.spark as gs\ngs._paths(1)\n",
            "private name _paths of gio_rs.spark",
        ),
        ("gio_rs.selection", "from . import select\n", "imports 'select' from the gio_rs facade"),
    ],
)
def test_the_import_check_finds_each_kind_of_problem(module, source, found):
    problems = import_problems(source, module)
    assert any(found in p for p in problems), problems


def test_the_import_check_lets_through_core_dunders_and_public_names():
    source = (
        "from .. import _core, memory\nfrom .._core import GioError, __version__\n_core._x\nmemory.require\n"
    )
    assert import_problems(source, "gio_rs.cli.main") == []


def test_the_size_check_counts_code_not_docstrings():
    body = "".join(f"    x{i} = {i}\n" for i in range(79))
    docstring = '    """' + "\n".join(["doc"] * 50) + '"""\n'
    assert size_problems(f"def f():\n{docstring}{body}", "m") == []
    long = size_problems(f"def f():\n{body}    y = 0\n    z = 1\n", "m")
    assert long == ["m:1 function f has 82 lines (> 80)"]
    method_body = "".join(f"    x{i} = {i}\n" for i in range(40))
    methods = "".join(textwrap.indent(f"def m{i}(self):\n{method_body}", "    ") for i in range(10))
    assert size_problems(f"class C:\n{methods}", "m")[0].startswith("m:1 class C has")
