"""The AG-UI request (``RunAgentInput``) to a thread and the client's tools.

``RunAgentInput`` is ``{threadId, runId, messages, tools, context, state, forwardedProps}``.
Messages: ``system`` and ``developer`` → system; ``user`` (text, or content parts whose
text parts are joined) → user; ``assistant`` (``content``, ``toolCalls`` with JSON-text
``function.arguments``) → assistant with its tool calls; ``tool`` (``toolCallId``,
``content``) → tool result. ``reasoning`` and ``activity`` messages are display-only.
The ``tools`` the client declares become plain tool specs: the model may call them and
the chat halts with ``manual_tool_calls`` for the client to run them. ``context`` entries
become one system message. Malformed input raises one
:class:`~rx_allm.errors.ValidationError` with a one-line message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from rx_allm.models import Message, Tool, ToolCall, assistant, system, tool, tool_result, user
from rx_allm.orchestration import Thread
from rx_allm.ui.request_body import field, items, json_object, refuse

_DISPLAY_ONLY = ("reasoning", "activity")


@dataclass
class RunAgentInput:
    """What an AG-UI client asked for: the ids, the conversation, the client's tools."""

    thread_id: str
    run_id: str
    thread: Thread
    tools: list[Tool] = dataclass_field(default_factory=list)


def messages_from_ag_ui(body: dict[str, Any] | str | bytes) -> RunAgentInput:
    """Parse and check a ``RunAgentInput`` body: its ids, its thread, the client's tools."""
    data = json_object(body)
    thread_id = field(data, "threadId", str, "body")
    run_id = field(data, "runId", str, "body")
    messages: list[Message] = []
    context = items(data, "context", "body") if data.get("context") else []
    if context:
        lines = [
            f"{field(c, 'description', str, 'context')}: {field(c, 'value', str, 'context')}" for c in context
        ]
        messages.append(system("\n".join(lines)))
    for index, message in enumerate(items(data, "messages", "body")):
        messages += _message(message, f"messages.{index}")
    if not any(m.role != "system" for m in messages):
        raise refuse("body.messages", "no conversation message")
    tools = (
        [_tool(spec, f"tools.{i}") for i, spec in enumerate(items(data, "tools", "body"))]
        if data.get("tools")
        else []
    )
    return RunAgentInput(thread_id, run_id, Thread(messages=messages), tools)


def _message(message: dict[str, Any], path: str) -> list[Message]:
    role = field(message, "role", str, path)
    if role in _DISPLAY_ONLY:
        return []
    if role in ("system", "developer"):
        return [system(field(message, "content", str, path))]
    if role == "user":
        return [user(_content_text(message, path))]
    if role == "tool":
        return [tool_result(field(message, "toolCallId", str, path), _content_text(message, path))]
    if role == "assistant":
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise refuse(f"{path}.content", "not a str")
        calls = (
            [_call(c, f"{path}.toolCalls.{i}") for i, c in enumerate(items(message, "toolCalls", path))]
            if message.get("toolCalls")
            else []
        )
        return [assistant(content, tool_calls=calls)]
    raise refuse(f"{path}.role", f"unknown role {role!r}")


def _content_text(message: dict[str, Any], path: str) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = items(message, "content", path)
    return "".join(str(part.get("text", "")) for part in parts if part.get("type") == "text")


def _call(call: dict[str, Any], path: str) -> ToolCall:
    call_id = field(call, "id", str, path)
    function = field(call, "function", dict, path)
    name = field(function, "name", str, f"{path}.function")
    raw = field(function, "arguments", str, f"{path}.function")
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise refuse(f"{path}.function.arguments", "not JSON") from None
    return ToolCall(
        id=call_id, name=name, arguments=arguments if isinstance(arguments, dict) else {}, raw_arguments=raw
    )


def _tool(spec: dict[str, Any], path: str) -> Tool:
    name = field(spec, "name", str, path)
    parameters = spec.get("parameters")
    schema = parameters if isinstance(parameters, dict) else None
    return tool(name=name, description=str(spec.get("description") or ""), schema=schema)
