"""A griffe extension for the API reference: the reST bits of rx_allm's docstrings as Markdown.

The library's docstrings use a few reST forms; this turns them into what mkdocstrings renders:

* roles (``:class:`~rx_allm.errors.AdapterError```, ``:func:`x```, ``:mod:`x```, ...) become
  code cross-references; a leading ``~`` shows the last name only. A target that is not in
  the reference is shown as plain code (the reference is ``optional``), never a broken link.
* a paragraph ending with ``::`` introduces a literal block: it ends with ``:`` instead.
* simple tables (``====  ====`` borders) become Markdown tables.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(?P<target>[^`]+)`")
_BORDER = re.compile(r"^\s*=+(?: +=+)+\s*$")


def _role(match: re.Match[str], module: str) -> str:
    target = match["target"].strip()
    label, _, explicit = target.partition(" <")
    if explicit:
        target, shown = explicit.rstrip(">"), label
    else:
        target = target.lstrip("~")
        shown = target.rsplit(".", 1)[-1] if match["target"].startswith("~") else target
    target = target.removesuffix("()")
    if not target.startswith("rx_allm"):
        target = f"{module}.{target}"  # a name relative to the docstring's module
    return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'


def _tables(lines: list[str]) -> list[str]:
    """Rewrite each simple reST table (top border, header, border, rows, bottom border)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        border = lines[i].strip()
        is_table = bool(_BORDER.match(lines[i])) and i + 2 < len(lines) and lines[i + 2].strip() == border
        end = (
            next((j for j in range(i + 3, len(lines)) if lines[j].strip() == border), None)
            if is_table
            else None
        )
        if end is None:
            out.append(lines[i])
            i += 1
            continue
        starts = [m.start() for m in re.finditer(r"=+", lines[i])]
        bounds = list(zip(starts, [*starts[1:], None], strict=True))
        rows = [
            [row[start:stop].strip().replace("|", "\\|") for start, stop in bounds]
            for row in (lines[i + 1], *lines[i + 3 : end])
        ]
        out.append("| " + " | ".join(rows[0]) + " |")
        out.append("|" + "---|" * len(starts))
        out.extend("| " + " | ".join(row) + " |" for row in rows[1:])
        i = end + 1
    return out


def markdown(text: str, module: str) -> str:
    """``text`` (a docstring of ``module``) with its roles, literal-block markers and tables as Markdown."""
    text = _ROLE.sub(lambda match: _role(match, module), text)
    text = re.sub(r"::[ \t]*\n", ":\n", text)
    return "\n".join(_tables(text.split("\n")))


class RstRoles(griffe.Extension):
    """Rewrite every docstring once the object tree is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value, obj.module.path)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """The top-level package is not among the objects ``on_object`` sees."""
        self.on_object(obj=pkg)
