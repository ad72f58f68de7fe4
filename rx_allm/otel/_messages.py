"""Messages in the GenAI semantic conventions' JSON form (recorded only on opt-in).

``gen_ai.input.messages``, ``gen_ai.system_instructions`` and ``gen_ai.output.messages``
are lists of ``{"role", "parts": [...]}``; a part is ``{"type": "text", "content"}``,
``{"type": "tool_call", "id", "name", "arguments"}`` or ``{"type": "tool_call_response",
"id", "result"}``. Span attributes hold primitives only, so each is recorded as JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from rx_allm.models import Message


def _parts(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_call_response", "id": message.tool_call_id, "result": message.text}]
    parts: list[dict[str, Any]] = [{"type": "text", "content": message.text}] if message.text else []
    parts.extend(
        {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
        for call in message.tool_calls
    )
    return parts


def input_attributes(messages: list[Message]) -> dict[str, str]:
    """``gen_ai.system_instructions`` (system messages) and ``gen_ai.input.messages`` (the rest)."""
    system = [{"type": "text", "content": m.text} for m in messages if m.role == "system"]
    rest = [{"role": m.role, "parts": _parts(m)} for m in messages if m.role != "system"]
    out = {"gen_ai.input.messages": json.dumps(rest, ensure_ascii=False)}
    if system:
        out["gen_ai.system_instructions"] = json.dumps(system, ensure_ascii=False)
    return out


def output_attribute(message: Message, finish_reason: str | None) -> str:
    """``gen_ai.output.messages`` for the model's final message."""
    out = {"role": "assistant", "parts": _parts(message), "finish_reason": finish_reason or "other"}
    return json.dumps([out], ensure_ascii=False)
