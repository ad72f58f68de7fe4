"""The request of ``useChat``'s default transport (``{id, messages: UIMessage[], ...}``) to a thread.

Per UIMessage (``{id, role, parts}``):

* ``system``: the text parts joined;
* ``user``: the text parts joined; with ``file`` parts, a list of content parts in order —
  text parts, and each file as the library's image part (``{"type": "image_url",
  "image_url": {"url": ...}}``, which every adapter sends in its provider's shape). Only
  images go (:data:`~rx_allm.ui.IMAGE_TYPES`, as a base64 ``data:`` URL or an ``http(s):``
  URL); any other file is refused, naming its media type;
* ``assistant``: split into steps at ``step-start`` parts; each step becomes one assistant
  message (its text, tool calls and reasoning), then one tool message per tool part that has an
  output (``output-available``: the output as JSON text; ``output-error``: the error text).
  A tool part whose call never finished streaming (``input-streaming``) is dropped, and so
  is one with no output yet together with its call (a request never carries an
  unanswered call). A reasoning part goes back into ``Message.reasoning`` when it carries
  the provider data the stream sent (``providerMetadata[METADATA_KEY]``: a thinking signature,
  ...), a tool call gets its ``callProviderMetadata[METADATA_KEY]`` back as
  ``ToolCall.metadata``, and the step's message its :data:`~rx_allm.ui.ai_sdk.DATA_PART`
  part's data as ``Message.metadata``; other reasoning, source, file and ``data-*`` parts
  are display-only.

Anything malformed (not JSON, no messages, an unknown role, a part without ``type``, a
tool part without its ``toolCallId`` or input, provider data of the wrong shape) raises one
:class:`~rx_allm.errors.ValidationError` whose message is a single line naming the field.
"""

from __future__ import annotations

from typing import Any

from rx_allm.models import Message, Reasoning, ToolCall, system, tool_result, user
from rx_allm.orchestration import Thread
from rx_allm.ui._encoder import result_text
from rx_allm.ui._inbound import METADATA_KEY, image_part, kept_data, restored_reasoning
from rx_allm.ui.ai_sdk import DATA_PART
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
    files = [index for index, part in enumerate(parts) if part["type"] == "file"]
    if not files:
        text = _text(parts, path)
        return [system(text) if role == "system" else user(text)]
    if role == "system":
        raise refuse(f"{path}.parts.{files[0]}", "file parts are read in user messages only")
    return [user(_content_parts(parts, path))]


def _text(parts: list[dict[str, Any]], path: str) -> str:
    texts = []
    for index, part in enumerate(parts):
        if part["type"] == "text":
            texts.append(field(part, "text", str, f"{path}.parts.{index}"))
    return "".join(texts)


def _content_parts(parts: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """A user message's text and file parts, in order, as content parts."""
    content: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        where = f"{path}.parts.{index}"
        if part["type"] == "text":
            content.append({"type": "text", "text": field(part, "text", str, where)})
        elif part["type"] == "file":
            content.append(_image_part(part, where))
    return content


def _image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    """A UI ``file`` part as the library's image part; any file that is not an image is refused."""
    media_type = field(part, "mediaType", str, where)
    return image_part(field(part, "url", str, where), media_type, f"{where}.mediaType", f"{where}.url")


def _assistant(parts: list[dict[str, Any]], path: str) -> list[Message]:
    out: list[Message] = []
    text: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    kept: dict[str, Any] = {}
    results: list[Message] = []

    def close_step() -> None:
        if text or calls:
            step = {"content": "".join(text), "tool_calls": [*calls], "reasoning": [*reasoning]}
            out.append(Message.model_validate({"role": "assistant", **step, "metadata": {**kept}}))
            out.extend(results)
        for pending in (text, calls, reasoning, results):
            pending.clear()
        kept.clear()

    for index, part in enumerate(parts):
        where = f"{path}.parts.{index}"
        kind = part["type"]
        if kind == "step-start":
            close_step()
        elif kind == "text":
            text.append(field(part, "text", str, where))
        elif kind == "reasoning":
            reasoning.extend(_reasoning(part, where))
        elif kind == DATA_PART:
            kept.update(field(part, "data", dict, where))
        elif kind == "dynamic-tool" or kind.startswith("tool-"):
            answered = _tool_part(part, kind, where)
            if answered is not None:
                calls.append(answered[0])
                results.append(answered[1])
    close_step()
    return out


def _provider_data(part: dict[str, Any], name: str, where: str) -> dict[str, Any] | None:
    """``part[name][METADATA_KEY]`` (what our stream sent along), or None when the part has none."""
    metadata = part.get(name)
    data = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return None if data is None else kept_data(data, f"{where}.{name}.{METADATA_KEY}")


def _reasoning(part: dict[str, Any], where: str) -> list[Reasoning]:
    """The reasoning a provider needs back, from a reasoning part that carries its data."""
    data = _provider_data(part, "providerMetadata", where)
    if data is None:
        return []  # display-only
    text = part.get("text")
    at = f"{where}.providerMetadata.{METADATA_KEY}"
    return [restored_reasoning(data, text if isinstance(text, str) else "", at)]


def _tool_part(part: dict[str, Any], kind: str, where: str) -> tuple[ToolCall, Message] | None:
    call_id = field(part, "toolCallId", str, where)
    name = field(part, "toolName", str, where) if kind == "dynamic-tool" else kind[len("tool-") :]
    state = part.get("state")
    if state not in _ANSWERED:
        return None
    if "input" not in part:
        raise refuse(f"{where}.input", "a tool output without its call's input")
    arguments = part["input"] if isinstance(part["input"], dict) else {}
    call = ToolCall(
        id=call_id,
        name=name,
        arguments=arguments,
        raw_arguments=result_text(part["input"]),
        metadata=_provider_data(part, "callProviderMetadata", where) or {},
    )
    if state == "output-error":
        content = str(part.get("errorText") or "the tool failed")
    else:
        content = result_text(part.get("output"))
    return call, tool_result(call_id, content, name=name)
