"""The Python examples of the README and of the docs pages run, and print what the pages show.

This is the one runner of the docs' code blocks. Every fenced ``python`` block of the pages
in :data:`PAGES` is a test:

* it runs in a fresh namespace (top-level ``await`` runs on a fresh event loop), against the
  Fake adapter or the provider emulator on 127.0.0.1, within :data:`TIME_LIMIT` seconds;
* when the next block is a ```` ```text title="Output" ```` block, what it printed must be
  exactly that text (trailing spaces aside);
* the ``test_*`` functions it defines are called, and of each conformance suite it defines
  (an :class:`~rx_allm.testing.AdapterConformance` subclass) one check and the last error
  case run (the full suites run in ``test_conformance.py``);
* a block whose first line is ``# not run: <why>`` (it needs a real provider) is not run: it
  must compile, its imports must work and every ``allm.<name>`` it uses must exist.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import rx_allm
from rx_allm.testing import AdapterConformance

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    ROOT / "docs" / "index.md",
    ROOT / "docs" / "getting-started.md",
    *sorted((ROOT / "docs" / "concepts").glob("*.md")),
    *sorted((ROOT / "docs" / "guides").glob("*.md")),
    *sorted((ROOT / "docs" / "providers").glob("*.md")),
    ROOT / "docs" / "testing.md",
]
NOT_RUN = "# not run:"
TIME_LIMIT = 60.0
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    info: str
    code: str
    follows_previous: bool  # only blank lines separate it from the previous block

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.info.split(" ", 1)[0] in ("python", "py")

    @property
    def is_output(self) -> bool:
        return 'title="Output"' in self.info


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page`` in order (indented fences included, indent removed)."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i, last_end = 0, -2
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = next(
            (
                j
                for j in range(i + 1, len(lines))
                if lines[j].strip().startswith(fence) and set(lines[j].strip()) == {fence[0]}
            ),
            len(lines),
        )
        code = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end]) + "\n"
        between = lines[last_end + 1 : i]
        follows = last_end >= 0 and all(not line.strip() for line in between)
        found.append(Block(page, i + 1, opening["info"].strip(), code, follows))
        last_end, i = end, end + 1
    return found


def examples() -> list[tuple[Block, str | None]]:
    """Every python block with the expected output that follows it (or None)."""
    out: list[tuple[Block, str | None]] = []
    for page in PAGES:
        found = blocks(page)
        for k, block in enumerate(found):
            if not block.is_python:
                continue
            after = found[k + 1] if k + 1 < len(found) else None
            expected = (
                after.code if after is not None and after.is_output and after.follows_previous else None
            )
            out.append((block, expected))
    return out


def not_run(block: Block) -> bool:
    return block.code.startswith(NOT_RUN)


EXAMPLES = examples()
RUN = [pytest.param(block, expected, id=block.name) for block, expected in EXAMPLES if not not_run(block)]
NOT_RUN_BLOCKS = [pytest.param(block, id=block.name) for block, _ in EXAMPLES if not_run(block)]


def run(block: Block) -> str:
    """Execute ``block`` in a fresh namespace on a worker thread; return what it printed."""
    code = compile(block.code, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    printed = io.StringIO()
    failure: list[BaseException] = []

    def target() -> None:
        namespace: dict[str, Any] = {"__name__": "__main__"}
        try:
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                asyncio.run(result)
            run_defined_tests(namespace)
        except BaseException as exc:
            failure.append(exc)

    with contextlib.redirect_stdout(printed):
        worker = threading.Thread(target=target, name=f"example {block.name}", daemon=True)
        worker.start()
        worker.join(TIME_LIMIT)
    assert not worker.is_alive(), f"{block.name} still running after {TIME_LIMIT:g}s"
    if failure:
        raise failure[0]
    return printed.getvalue()


def run_defined_tests(namespace: dict[str, Any]) -> None:
    """Call the ``test_*`` functions a block defines; run one check and one error case of its suites."""
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()
        elif isinstance(value, type) and issubclass(value, AdapterConformance) and name.startswith("Test"):
            value().test_text()
            value().test_error(list(value.harness_factory().error_cases())[-1])


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


@pytest.mark.parametrize(("block", "expected"), RUN)
def test_example_runs_and_prints_what_the_page_shows(block: Block, expected: str | None) -> None:
    printed = run(block)
    if expected is not None:
        assert lines(printed) == lines(expected)


@pytest.mark.parametrize("block", NOT_RUN_BLOCKS)
def test_example_not_run_is_still_valid(block: Block) -> None:
    first = block.code.splitlines()[0]
    assert first.removeprefix(NOT_RUN).strip(), f"{block.name}: say why the block is not run"
    tree = ast.parse(block.code, block.name)
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(body=imports, type_ignores=[]), block.name, "exec"), {})
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "allm"
    }
    assert sorted(name for name in used if not hasattr(rx_allm, name)) == []


def test_every_page_has_examples_and_outputs_follow_examples() -> None:
    for page in PAGES:
        assert page.exists(), page
    pages_with_examples = {block.page for block, _ in EXAMPLES}
    assert ROOT / "README.md" in pages_with_examples
    assert ROOT / "docs" / "getting-started.md" in pages_with_examples
    assert sum(block.page.name == "testing.md" for block, _ in EXAMPLES) >= 8
    for page in PAGES:
        found = blocks(page)
        for k, block in enumerate(found):
            if block.is_output:
                previous = found[k - 1] if k else None
                assert previous is not None and previous.is_python and block.follows_previous, block.name
