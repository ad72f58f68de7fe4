"""Reading a browser's JSON request body: one typed error, one line, for anything malformed."""

from __future__ import annotations

import json
from typing import Any

from rx_allm.errors import ValidationError


def refuse(path: str, why: str) -> ValidationError:
    """The error for a malformed body: ``invalid_request`` with one ``(path, reason)``."""
    return ValidationError("invalid_request", f"{path}: {why}", errors=[(path, why)])


def json_object(body: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """The body as a dict (parsed when it is text); raises :class:`ValidationError`."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            raise refuse("body", "not JSON") from None
    if not isinstance(body, dict):
        raise refuse("body", "not a JSON object")
    return body


def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], path: str) -> Any:
    """``data[name]``, which must be present and of type ``kind``."""
    value = data.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise refuse(f"{path}.{name}", "missing" if value is None else f"not a {expected}")
    return value


def items(data: dict[str, Any], name: str, path: str) -> list[dict[str, Any]]:
    """``data[name]``: a list of JSON objects."""
    values: list[dict[str, Any]] = field(data, name, list, path)
    for index, value in enumerate(values):
        if not isinstance(value, dict):
            raise refuse(f"{path}.{name}.{index}", "not a JSON object")
    return values
