"""Two harmless built-in tools for demos: a clock and a calculator (``rx-allm chat --tools demo``).

``DEMO_TOOLS`` is the list to pass as ``tools=``; :func:`demo_scripts` gives Fake scripts
(one per model request) that call the calculator and then answer, so a tool loop can be
shown with no key.
"""

from __future__ import annotations

import ast
import datetime
import operator
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from rx_allm.orchestration.tools import FunctionTool, tool

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_EXPRESSION = 200
_MAX_EXPONENT = 100


@tool
def clock(
    utc_offset_hours: Annotated[float, Field(ge=-14, le=14, description="Hours east of UTC")] = 0.0,
) -> str:
    """The current date and time (ISO 8601) at a UTC offset."""
    zone = datetime.timezone(datetime.timedelta(hours=utc_offset_hours))
    return datetime.datetime.now(zone).isoformat(timespec="seconds")


@tool
def calculator(
    expression: Annotated[str, Field(description="Arithmetic with + - * / // % ** and parentheses")],
) -> float | int:
    """Evaluate an arithmetic expression (numbers and operators only)."""
    if len(expression) > _MAX_EXPRESSION:
        raise ValueError(f"expression longer than {_MAX_EXPRESSION} characters")
    value: float | int = _evaluate(ast.parse(expression, mode="eval").body)
    return value


def _evaluate(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ValueError(f"exponent larger than {_MAX_EXPONENT}")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    raise ValueError(f"unsupported expression element: {type(node).__name__}")


DEMO_TOOLS: list[FunctionTool] = [clock, calculator]


def demo_scripts(expression: str = "6 * 7") -> list[list[Any]]:
    """Fake scripts for a two-step demo chat: call ``calculator(expression)``, then answer with its value."""
    value = _evaluate(ast.parse(expression, mode="eval").body)
    call = {"id": "call_demo_1", "name": "calculator", "arguments": {"expression": expression}}
    answer = f"{expression} = {value}"
    return [
        [("text", "Let me calculate that. "), ("tool_call", call), ("finish", "tool_calls")],
        [*(("text", word) for word in re.findall(r"\S+\s*", answer)), ("finish", "stop")],
    ]


__all__ = ["DEMO_TOOLS", "calculator", "clock", "demo_scripts"]
