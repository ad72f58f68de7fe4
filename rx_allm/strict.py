"""Strict input: unknown names get the nearest valid one; bodies that are not JSON are refused.

A typo must never vanish. :func:`unknown_names` lists the names outside a valid set, each
with the closest valid name (``difflib``), as ``(name, reason)`` pairs for a
:class:`~rx_allm.errors.ValidationError`. :func:`encode_body` turns a provider request body
into JSON bytes and, when that fails (NaN or Infinity, a lone surrogate, an object JSON
cannot hold, a reference cycle), raises a pre-flight ``ValidationError`` naming the path
of the bad value instead of the encoder's untyped exception.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from rx_allm.errors import ValidationError

__all__ = ["encode_body", "json_problems", "suggestion", "unknown_names"]

_MAX_DEPTH = 200


def suggestion(name: str, valid: Collection[str]) -> str:
    """``"did you mean 'x'?"`` for the closest valid name, else the valid names listed."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    listed = ", ".join(sorted(valid)[:12]) + (", ..." if len(valid) > 12 else "")
    return f"expected one of: {listed}"


def unknown_names(names: Iterable[str], valid: Collection[str], what: str) -> list[tuple[str, str]]:
    """``(name, "unknown <what>; did you mean ...")`` for every name not in ``valid``."""
    return [(name, f"unknown {what}; {suggestion(name, valid)}") for name in names if name not in valid]


def encode_body(body: Mapping[str, Any]) -> bytes:
    """``body`` as compact UTF-8 JSON; a value JSON cannot carry raises ``ValidationError`` (pre-flight)."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError):
        pass
    problems = json_problems(body)
    raise ValidationError("invalid_request", errors=problems or [("body", "not JSON")])


def json_problems(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every value under ``value`` that cannot be sent as JSON, as ``(path, reason)`` pairs."""
    problems: list[tuple[str, str]] = []
    _walk(value, path, problems, set(), 0)
    return problems


def _walk(value: Any, path: str, problems: list[tuple[str, str]], active: set[int], depth: int) -> None:
    where = path or "body"
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            problems.append((where, f"{value!r} is not a finite number (JSON has no NaN or Infinity)"))
        return
    if isinstance(value, str):
        if _has_lone_surrogate(value):
            problems.append((where, "invalid unicode: a lone surrogate cannot be encoded as UTF-8"))
        return
    if not isinstance(value, (dict, list, tuple)):
        problems.append((where, f"a {type(value).__name__} is not JSON"))
        return
    if id(value) in active:
        problems.append((where, "circular reference"))
        return
    if depth >= _MAX_DEPTH:
        problems.append((where, "nested too deeply"))
        return
    active.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(value, dict) and not isinstance(key, str):
            problems.append((f"{path}.{key}" if path else str(key), "a key that is not a string"))
        _walk(item, f"{path}.{key}" if path else str(key), problems, active, depth + 1)
    active.discard(id(value))


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
