"""Pre-flight checks of a resolved request (no I/O): every problem at once."""

from __future__ import annotations

import re

from rx_allm.errors import ValidationError
from rx_allm.models import Request

ROLES = frozenset({"system", "user", "assistant", "tool"})
RESERVED_TOOL_NAMES = frozenset({"auto", "none", "required", "any"})
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RESPONSE_FORMAT_TYPES = frozenset({"text", "json_object", "json_schema"})


def validate_request(request: Request) -> None:
    """Raise :class:`ValidationError` (``invalid_request``) listing every problem found."""
    errors: list[tuple[str, str]] = []
    if not request.messages:
        errors.append(("messages", "empty"))
    for i, message in enumerate(request.messages):
        if message.role not in ROLES:
            errors.append((f"messages.{i}.role", "unknown"))
        if message.role == "tool" and not message.tool_call_id:
            errors.append((f"messages.{i}.tool_call_id", "required"))
    seen: set[str] = set()
    for i, tool in enumerate(request.tools):
        if not tool.name:
            errors.append((f"tools.{i}.name", "empty"))
        elif tool.name in RESERVED_TOOL_NAMES:
            errors.append((f"tools.{i}.name", "reserved_tool_name"))
        elif not _TOOL_NAME.match(tool.name):
            errors.append((f"tools.{i}.name", "invalid_format"))
        elif tool.name in seen:
            errors.append(("tools", "duplicate_name"))
        seen.add(tool.name)
    if request.temperature is not None and not 0.0 <= request.temperature <= 2.0:
        errors.append(("temperature", "out_of_range"))
    if request.max_tokens is not None and request.max_tokens <= 0:
        errors.append(("max_tokens", "must_be_positive"))
    if not _valid_response_format(request.response_format):
        errors.append(("response_format", "invalid_shape"))
    if errors:
        raise ValidationError("invalid_request", errors=errors)


def _valid_response_format(fmt: object) -> bool:
    if fmt is None:
        return True
    if isinstance(fmt, str):
        return fmt in ("text", "json_object")
    if not isinstance(fmt, dict) or fmt.get("type") not in _RESPONSE_FORMAT_TYPES:
        return False
    if fmt["type"] == "json_schema":
        schema = fmt.get("json_schema", fmt)
        return (
            isinstance(schema, dict) and isinstance(schema.get("schema"), dict) and bool(schema.get("name"))
        )
    return True
