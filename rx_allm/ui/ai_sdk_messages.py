"""The request of ``useChat``'s default transport (``{id, messages: UIMessage[], ...}``) to a thread.

Per UIMessage (``{id, role, parts}``):

* ``system`` / ``user``: the text parts joined (a user ``file`` part is refused: not supported yet);
* ``assistant``: split into steps at ``step-start`` parts; each step becomes one assistant
  message (its text and tool calls), then one tool message per tool part that has an
  output (``output-available``: the output as JSON text; ``output-error``: the error text).
  A tool part whose call never finished streaming (``input-streaming``) is dropped, and so
  is one with no output yet together with its call (a request never carries an
  unanswered call). Reasoning, source, file and ``data-*`` parts are display-only.

Anything malformed (not JSON, no messages, an unknown role, a part without ``type``, a
tool part without its ``toolCallId`` or input) raises one :class:`~rx_allm.errors.ValidationError`
whose message is a single line naming the field.
"""

from __future__ import annotations

from typing import Any

from rx_allm.models import Message, ToolCall, assistant, system, tool_result, user
from rx_allm.orchestration import Thread
from rx_allm.ui._encoder import result_text
from rx_allm.ui.request_body import field, items, json_object, refuse

_ANSWERED = ("output-available", "output-error")


def messages_from_ai_sdk(body: dict[str, Any] | str | bytes) -> Thread:
    """The thread of an AI SDK chat request body (``{messages: UIMessage[], ...}``)."""
    data = json_object(body)
    messages = items(data, "messages", "body")
    if not messages:
        raise refuse("body.messages", "empty")
    out: list[Message] = []
    for index, message in enumerate(messages):
        out += _from_ui_message(message, f"messages.{index}")
    return Thread(messages=out)


def _from_ui_message(message: dict[str, Any], path: str) -> list[Message]:
    role = field(message, "role", str, path)
    parts = items(message, "parts", path)
    for index, part in enumerate(parts):
        field(part, "type", str, f"{path}.parts.{index}")
    if role == "assistant":
        return _assistant(parts, path)
    if role not in ("system", "user"):
        raise refuse(f"{path}.role", f"unknown role {role!r}")
    if role == "user" and any(part["type"] == "file" for part in parts):
        raise refuse(f"{path}.parts", "file parts are not supported")
    text = _text(parts, path)
    return [system(text) if role == "system" else user(text)]


def _text(parts: list[dict[str, Any]], path: str) -> str:
    texts = []
    for index, part in enumerate(parts):
        if part["type"] == "text":
            texts.append(field(part, "text", str, f"{path}.parts.{index}"))
    return "".join(texts)


def _assistant(parts: list[dict[str, Any]], path: str) -> list[Message]:
    out: list[Message] = []
    text: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []

    def close_step() -> None:
        if text or calls:
            out.append(assistant("".join(text), tool_calls=list(calls)))
            out.extend(results)
        text.clear()
        calls.clear()
        results.clear()

    for index, part in enumerate(parts):
        where = f"{path}.parts.{index}"
        kind = part["type"]
        if kind == "step-start":
            close_step()
        elif kind == "text":
            text.append(field(part, "text", str, where))
        elif kind == "dynamic-tool" or kind.startswith("tool-"):
            answered = _tool_part(part, kind, where)
            if answered is not None:
                calls.append(answered[0])
                results.append(answered[1])
    close_step()
    return out


def _tool_part(part: dict[str, Any], kind: str, where: str) -> tuple[ToolCall, Message] | None:
    call_id = field(part, "toolCallId", str, where)
    name = field(part, "toolName", str, where) if kind == "dynamic-tool" else kind[len("tool-") :]
    state = part.get("state")
    if state not in _ANSWERED:
        return None
    if "input" not in part:
        raise refuse(f"{where}.input", "a tool output without its call's input")
    arguments = part["input"] if isinstance(part["input"], dict) else {}
    call = ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=result_text(part["input"]))
    if state == "output-error":
        content = str(part.get("errorText") or "the tool failed")
    else:
        content = result_text(part.get("output"))
    return call, tool_result(call_id, content, name=name)
