"""The AG-UI request (``RunAgentInput``) to a thread and the client's tools.

``RunAgentInput`` is ``{threadId, runId, messages, tools, context, state, forwardedProps}``.
Messages: ``system`` and ``developer`` → system; ``user`` → user: its text, or with ``image``
parts its parts in order, each image (a ``data`` source: base64 bytes and ``mimeType``; a
``url`` source) as the library's image part (:data:`~rx_allm.ui.IMAGE_TYPES` only; audio,
video, document parts and provider ``file`` handles are refused); ``assistant``
(``content``, ``toolCalls`` with JSON-text ``function.arguments``) → assistant with its tool
calls; ``tool`` (``toolCallId``, ``content``) → tool result. The provider data our stream sent
as ``encryptedValue`` comes back: a ``reasoning`` message's goes into the next assistant
message's ``Message.reasoning`` (the one before it when a user message or the end comes
first), an assistant message's into ``Message.metadata``, a tool call's into
``ToolCall.metadata``. Other ``reasoning`` messages and ``activity`` messages are display-only.
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

from rx_allm.models import Message, Reasoning, Tool, ToolCall, assistant, system, tool, tool_result, user
from rx_allm.orchestration import Thread
from rx_allm.ui._inbound import METADATA_KEY, image_part, kept_data, restored_reasoning
from rx_allm.ui.request_body import field, items, json_object, refuse


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
    thread = _Messages()
    for index, message in enumerate(items(data, "messages", "body")):
        thread.add(message, f"messages.{index}")
    messages += thread.flush()
    if not any(m.role != "system" for m in messages):
        raise refuse("body.messages", "no conversation message")
    tools = (
        [_tool(spec, f"tools.{i}") for i, spec in enumerate(items(data, "tools", "body"))]
        if data.get("tools")
        else []
    )
    return RunAgentInput(thread_id, run_id, Thread(messages=messages), tools)


class _Messages:
    """The thread being rebuilt: reasoning that carries our data waits for its assistant message."""

    def __init__(self) -> None:
        self.out: list[Message] = []
        self.reasoning: list[Reasoning] = []

    def add(self, message: dict[str, Any], path: str) -> None:
        role = field(message, "role", str, path)
        if role == "reasoning":
            self.reasoning += _reasoning(message, path)
        elif role == "activity":
            pass  # display-only
        elif role == "assistant":
            self.out.append(_assistant(message, path, self.reasoning))
            self.reasoning = []
        elif role == "tool":
            self.out.append(tool_result(field(message, "toolCallId", str, path), _text(message, path)))
        elif role in ("system", "developer", "user"):
            self.flush()
            if role == "user":
                self.out.append(user(_user(message, path)))
            else:
                self.out.append(system(field(message, "content", str, path)))
        else:
            raise refuse(f"{path}.role", f"unknown role {role!r}")

    def flush(self) -> list[Message]:
        """The messages so far; reasoning no assistant message followed (a signature that came
        after its step's text) goes to the assistant message before it."""
        if self.reasoning and self.out and self.out[-1].role == "assistant":
            last = self.out[-1]
            self.out[-1] = last.model_copy(update={"reasoning": [*last.reasoning, *self.reasoning]})
        self.reasoning = []
        return self.out


def _ours(entity: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The provider data our stream gave ``entity`` (its ``encryptedValue``), None when it has none."""
    raw = entity.get("encryptedValue")
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None  # another producer's artefact
    if not isinstance(value, dict) or METADATA_KEY not in value:
        return None
    return kept_data(value[METADATA_KEY], f"{path}.encryptedValue.{METADATA_KEY}")


def _reasoning(message: dict[str, Any], path: str) -> list[Reasoning]:
    data = _ours(message, path)
    if data is None:
        return []  # display-only
    text = message.get("content")
    at = f"{path}.encryptedValue.{METADATA_KEY}"
    return [restored_reasoning(data, text if isinstance(text, str) else "", at)]


def _assistant(message: dict[str, Any], path: str, reasoning: list[Reasoning]) -> Message:
    content = message.get("content") or ""
    if not isinstance(content, str):
        raise refuse(f"{path}.content", "not a str")
    calls = (
        [_call(c, f"{path}.toolCalls.{i}") for i, c in enumerate(items(message, "toolCalls", path))]
        if message.get("toolCalls")
        else []
    )
    return assistant(content, tool_calls=calls).model_copy(
        update={"reasoning": reasoning, "metadata": _ours(message, path) or {}}
    )


def _text(message: dict[str, Any], path: str) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = items(message, "content", path)
    return "".join(str(part.get("text", "")) for part in parts if part.get("type") == "text")


def _user(message: dict[str, Any], path: str) -> str | list[dict[str, Any]]:
    """A user message's text, or its parts in order when it carries images."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = items(message, "content", path)
    if all(part.get("type") == "text" for part in parts):
        return _text(message, path)
    out: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        where = f"{path}.content.{index}"
        kind = field(part, "type", str, where)
        if kind == "text":
            out.append({"type": "text", "text": field(part, "text", str, where)})
        elif kind == "image":
            out.append(_image(field(part, "source", dict, where), f"{where}.source"))
        else:
            raise refuse(f"{where}.type", f"cannot send this {kind} part to the model: images only")
    return out


def _image(source: dict[str, Any], where: str) -> dict[str, Any]:
    """An image part's source (``data``: base64 bytes; ``url``) as the library's image part."""
    kind = field(source, "type", str, where)
    if kind == "data":
        media_type = field(source, "mimeType", str, where)
        url = f"data:{media_type};base64,{field(source, 'value', str, where)}"
    elif kind == "url":
        url = field(source, "value", str, where)
        media_type = source.get("mimeType") if isinstance(source.get("mimeType"), str) else None
    else:
        raise refuse(f"{where}.type", f"a {kind} source cannot be sent: data or url sources only")
    return image_part(url, media_type, f"{where}.mimeType", f"{where}.value")


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
        id=call_id,
        name=name,
        arguments=arguments if isinstance(arguments, dict) else {},
        raw_arguments=raw,
        metadata=_ours(call, path) or {},
    )


def _tool(spec: dict[str, Any], path: str) -> Tool:
    name = field(spec, "name", str, path)
    parameters = spec.get("parameters")
    schema = parameters if isinstance(parameters, dict) else None
    return tool(name=name, description=str(spec.get("description") or ""), schema=schema)
