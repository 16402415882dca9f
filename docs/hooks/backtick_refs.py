"""Griffe extension for the API pages: names in single backticks in gio_rs's docstrings become
links, and a dotted one that names nothing fails the docs build. (Also: `<` outside code spans is
text, as in plain docstrings, not the start of an HTML tag.)

The docstrings are numpydoc, where `name` in single backticks refers to a parameter or an object.
For each such span that is a dotted Python name, the first part is looked up the way a reader
would: a parameter of the documented function stays plain code; otherwise the enclosing class,
module and the gio_rs package are searched in that order. When it resolves inside gio_rs, the rest
is followed member by member:

- every part exists: the span becomes an optional cross-reference (a link when the object has a
  page; `mkdocs build --strict` does not fail for an undocumented helper);
- a part is missing (`Selection.kl_trace_` or `gio_rs.no_such_function`): a warning naming the
  file, the line and the missing member, which `--strict` turns into a failed build.

Names that resolve outside gio_rs (`np.random`) or to nothing at all (a column name, a value) stay
plain code. Only the copy of each docstring that the docs render changes, never the source.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import griffe

SPAN = re.compile(r"(?<![`\w])`(?!`)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)`(?!`)")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")


def _escape_angle_brackets(line: str) -> str:
    """`array<double>` outside a code span is text in a docstring, not an HTML tag: keep it."""
    out, end = [], 0
    for code in CODE_SPAN.finditer(line):
        out += [line[end : code.start()].replace("<", "&lt;"), code.group(0)]
        end = code.end()
    return "".join(out) + line[end:].replace("<", "&lt;")


class _External(Exception):
    """The name leads outside the loaded packages (e.g. into numpy): nothing to check."""


def _members(obj: Any) -> dict[str, Any]:
    try:
        return dict(obj.all_members) if hasattr(obj, "all_members") else dict(obj.members)
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return dict(obj.members)


def _final(obj: Any) -> Any:
    if obj.is_alias:
        try:
            return obj.final_target
        except (griffe.AliasResolutionError, griffe.CyclicAliasError) as err:
            raise _External from err
    return obj


def _parameters(obj: Any) -> set[str]:
    """Names of the parameters documented alongside `obj` (a class takes its __init__'s)."""
    function = obj
    if obj.is_class and "__init__" in obj.members:
        function = obj.members["__init__"]
    params = getattr(function, "parameters", None)
    return {p.name for p in params} if params is not None else set()


class BacktickReferences(griffe.Extension):
    """Rewrites the docstrings of the package being documented (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._package = pkg
        self._visit(pkg)

    def _visit(self, obj: Any) -> None:
        for member in list(obj.members.values()):
            if not member.is_alias:
                self._visit(member)
        if obj.docstring is not None:
            obj.docstring.value = self._rewrite(obj, obj.docstring.value)

    def _rewrite(self, obj: Any, text: str) -> str:
        lines, in_code = [], False
        for line in text.split("\n"):
            if FENCE.match(line):
                in_code = not in_code
            if not in_code and not line.lstrip().startswith(">>>"):
                line = SPAN.sub(lambda m: self._replace(obj, m), _escape_angle_brackets(line))
            lines.append(line)
        return "\n".join(lines)

    def _replace(self, obj: Any, match: re.Match) -> str:
        dotted = match.group(1)
        try:
            target = self._resolve(obj, dotted)
        except _External:
            return match.group(0)
        if target is None:
            return match.group(0)
        return f'<autoref identifier="{target.path}" optional><code>{dotted}</code></autoref>'

    def _start(self, obj: Any, head: str) -> Optional[Any]:
        """What `head` names, seen from `obj`'s docstring, or None."""
        if head in _parameters(obj):
            return None
        scope = obj
        while scope is not None:
            if scope.is_alias:
                break
            if head in _members(scope):
                return _members(scope)[head]
            scope = scope.parent
        return self._package if head == self._package.name else None

    def _resolve(self, obj: Any, dotted: str) -> Optional[Any]:
        head, *rest = dotted.split(".")
        current = self._start(obj, head)
        if current is None:
            return None
        current = _final(current)
        walked = [head]
        for name in rest:
            members = _members(current)
            if name not in members:
                where = f"{obj.relative_filepath}:{obj.docstring.lineno}"
                griffe.logger.warning(
                    f"{where}: `{dotted}` names nothing: {'.'.join(walked)} ({current.path}) has "
                    f"no member {name!r}"
                )
                return None
            current = _final(members[name])
            walked.append(name)
        return current
