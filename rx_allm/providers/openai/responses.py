"""OpenAI Responses: the ``POST /responses`` body and the mapper of its typed events.

:class:`ResponsesMapper` dispatches on the event ``type``: text deltas (the block id is
the message item id, kept in ``Message.metadata[ITEM_ID]``), refusal events, function
calls keyed by item id (``call_id`` is the event id; the ``fc_`` item id is kept in
``ToolCall.metadata[ITEM_ID]``), reasoning items (summary deltas stream as reasoning; the
item id and ``encrypted_content`` end in ``Message.reasoning``), and the terminal
``response.completed``/``response.incomplete``/``response.failed``/``error`` events.

The body sends an assistant message's Responses reasoning back as ``reasoning`` items
with their ids, followed by the items they preceded (the message and ``function_call``
items with their ids), as the API requires; reasoning of other providers is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rx_allm._sse import SSEEvent
from rx_allm.adapter import Emit, StreamMapper, on, usage_from
from rx_allm.events import ITEM_ID
from rx_allm.models import FinishReason, Message, Reasoning, Request, ResponseFormat
from rx_allm.providers._request import system_text
from rx_allm.providers.openai.shared import (
    PROVIDER,
    arguments_text,
    fields_of,
    json_schema_spec,
    merge_params,
    opt_text,
    put,
    raise_in_band,
    tool_choice,
)
from rx_allm.schema import normalize_format

RESPONSES_USAGE: dict[str, str | tuple[str, str]] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "total_tokens": "total_tokens",
    "cached_input_tokens": ("input_tokens_details", "cached_tokens"),
    "reasoning_tokens": ("output_tokens_details", "reasoning_tokens"),
}
_INCOMPLETE_FINISH: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


# -- Responses body ------------------------------------------------------------------
_RESPONSES_SKIP = frozenset({"endpoint", "stream", "reasoning_effort", "reasoning_summary", "verbosity"})


def build_body(request: Request, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /responses`` body (system text → ``instructions``; ``request.options`` merged last)."""
    body: dict[str, Any] = {"model": model, "input": responses_input(request.messages), "stream": True}
    instructions = system_text(request.messages)
    if instructions:
        body["instructions"] = instructions
    if request.tools:
        body["tools"] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.schema_}
            for t in request.tools
        ]
    put(body, "tool_choice", tool_choice(request.tool_choice, flat=True))
    put(body, "text", responses_text(request.response_format, params.get("verbosity")))
    put(body, "max_output_tokens", request.max_tokens)
    put(body, "temperature", request.temperature)
    put(body, "reasoning", responses_reasoning(params))
    merge_params(body, params, _RESPONSES_SKIP)
    merge_params(body, request.options, frozenset({"stream"}))
    return body


def responses_input(messages: list[Message]) -> list[dict[str, Any]]:
    """Input items: messages, ``function_call`` items for past calls, ``function_call_output`` results."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            output = message.content if isinstance(message.content, str) else message.text
            items.append({"type": "function_call_output", "call_id": message.tool_call_id, "output": output})
            continue
        items.extend(_message_items(message))
    return items


def _message_items(message: Message) -> list[dict[str, Any]]:
    """A user/assistant message as input items; Responses reasoning goes back with its item ids."""
    reasoning = [r for r in message.reasoning if r.provider == PROVIDER and r.id]
    items = [_reasoning_item(r) for r in reasoning]
    item_id = message.metadata.get(ITEM_ID) if reasoning else None
    if message.content or not message.tool_calls:
        content = responses_content(message)
        if isinstance(item_id, str) and message.role == "assistant":
            text = [{"type": "output_text", "text": content}] if isinstance(content, str) else content
            items.append({"type": "message", "id": item_id, "role": "assistant", "content": text})
        else:
            items.append({"role": message.role, "content": content})
    for call in message.tool_calls:
        item = {
            "type": "function_call",
            "call_id": call.id,
            "name": call.name,
            "arguments": arguments_text(call),
        }
        if reasoning and isinstance(call.metadata.get(ITEM_ID), str):
            item["id"] = call.metadata[ITEM_ID]
        items.append(item)
    return items


def _reasoning_item(reasoning: Reasoning) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": reasoning.text}] if reasoning.text else []
    item: dict[str, Any] = {"type": "reasoning", "id": reasoning.id, "summary": summary}
    if reasoning.encrypted_content:
        item["encrypted_content"] = reasoning.encrypted_content
    return item


def responses_content(message: Message) -> str | list[dict[str, Any]]:
    """Text as is; content parts translated to ``input_text``/``output_text``/``input_image``."""
    if isinstance(message.content, str):
        return message.content
    text_type = "output_text" if message.role == "assistant" else "input_text"
    return [_responses_part(part, text_type) for part in message.content]


def _responses_part(part: dict[str, Any], text_type: str) -> dict[str, Any]:
    kind = part.get("type", "text")
    if kind == "text":
        return {"type": text_type, "text": part.get("text", "")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        out = {"type": "input_image", "image_url": url}
        if isinstance(image, dict) and image.get("detail"):
            out["detail"] = image["detail"]
        return out
    return dict(part)


def responses_text(response_format: ResponseFormat | None, verbosity: Any) -> dict[str, Any] | None:
    """The ``text`` object: ``format`` from the response format, ``verbosity`` from the params."""
    fmt = normalize_format(response_format)
    text: dict[str, Any] = {}
    if isinstance(fmt, str):
        text["format"] = {"type": fmt}
    elif fmt is not None and fmt.get("type") == "json_schema":
        text["format"] = {"type": "json_schema", **json_schema_spec(fmt)}
    elif fmt is not None:
        text["format"] = dict(fmt)
    if verbosity is not None:
        text["verbosity"] = verbosity
    return text or None


def responses_reasoning(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """``reasoning: {effort, summary}`` from ``reasoning_effort``/``reasoning_summary``."""
    pairs = (("effort", params.get("reasoning_effort")), ("summary", params.get("reasoning_summary")))
    reasoning = {key: value for key, value in pairs if value is not None}
    return reasoning or None


# -- stream mapping: Responses ---------------------------------------------------------


class ResponsesMapper(StreamMapper):
    """Responses API events → rx_allm events (dispatch on ``type``, else the SSE event name)."""

    provider = PROVIDER

    def __init__(self, emit: Emit) -> None:
        super().__init__(emit)
        self._by_output: dict[int, str] = {}  # output_index → item id
        self._summary_part: tuple[Any, Any] | None = None

    def frame_name(self, event: SSEEvent, data: dict[str, Any]) -> str:
        """The event's ``type``, else its SSE event name (the message is announced before any
        event but ``response.created``, which announces it with its id)."""
        kind = data.get("type")
        name = kind if isinstance(kind, str) else event.event
        if not self.started and name != "response.created":
            self.announce()
        return name

    @on("response.created")
    def on_created(self, data: dict[str, Any]) -> None:
        response = fields_of(data.get("response"))
        self.announce(response.get("id"), response.get("model"))

    # -- output items ----------------------------------------------------------------
    @on("response.output_text.delta")
    def on_text(self, data: dict[str, Any]) -> None:
        self.text_delta(data.get("delta"), block_id=opt_text(data.get("item_id")))

    @on("response.output_text.done")
    def on_text_done(self, data: dict[str, Any]) -> None:
        self.close_text()

    @on("response.refusal.delta")
    def on_refusal_delta(self, data: dict[str, Any]) -> None:
        self.refusal_delta(data.get("delta"))

    @on("response.refusal.done")
    def on_refusal_done(self, data: dict[str, Any]) -> None:
        refusal = data.get("refusal")
        self.refusal = refusal if isinstance(refusal, str) else self.refusal or ""

    @on("response.output_item.added")
    def on_item_added(self, data: dict[str, Any]) -> None:
        item = fields_of(data.get("item"))
        item_id = opt_text(item.get("id"))
        if item.get("type") == "message" and item_id:
            self.message_metadata[ITEM_ID] = item_id
        self._function_call(data)

    @on("response.output_item.done")
    def on_item_done(self, data: dict[str, Any]) -> None:
        item = fields_of(data.get("item"))
        if item.get("type") == "reasoning" and opt_text(item.get("id")):
            summary = "\n\n".join(str(p.get("text", "")) for p in _dicts(item.get("summary")))
            key = str(item["id"])
            self.close_reasoning(key, id=key, encrypted_content=item.get("encrypted_content"), text=summary)
            return
        self._set_final(self._function_call(data), item.get("arguments"))

    @on("response.function_call_arguments.delta")
    def on_arguments_delta(self, data: dict[str, Any]) -> None:
        self.call_delta(self._item_key(data), data.get("delta"))

    @on("response.function_call_arguments.done")
    def on_arguments_done(self, data: dict[str, Any]) -> None:
        key = self._item_key(data)
        self._set_final(key, data.get("arguments"))

    @on(
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary.delta",
        "response.reasoning_text.delta",
    )
    def on_summary_delta(self, data: dict[str, Any]) -> None:
        item_id = opt_text(data.get("item_id")) or "reasoning"
        part = (item_id, data.get("summary_index"))
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return
        if self._summary_part is not None and self._summary_part[0] == item_id and part != self._summary_part:
            delta = "\n\n" + delta  # a new summary part of the same item
        self._summary_part = part
        self.reasoning_delta(item_id, delta, block_id=item_id)

    def _function_call(self, data: dict[str, Any]) -> str | None:
        """Register (once) the function call item of an ``output_item`` event; its key or None."""
        item = fields_of(data.get("item"))
        if item.get("type") != "function_call":
            return None
        item_id = opt_text(item.get("id"))
        call_id = opt_text(item.get("call_id")) or item_id
        key = item_id or call_id
        if key is None or call_id is None:
            return None
        if key not in self.calls:
            call = self.open_call(key, call_id, opt_text(item.get("name")) or "")
            if item_id:
                call.metadata[ITEM_ID] = item_id
        index = data.get("output_index")
        if isinstance(index, int):
            self._by_output[index] = key
        return key

    def _item_key(self, data: dict[str, Any]) -> str | None:
        item_id = data.get("item_id")
        if isinstance(item_id, str) and item_id in self.calls:
            return item_id
        index = data.get("output_index")
        return self._by_output.get(index) if isinstance(index, int) else None

    def _set_final(self, key: str | None, arguments: Any) -> None:
        call = self.calls.get(key)
        if call is not None and isinstance(arguments, str) and arguments:
            call.final = arguments

    # -- terminal events ---------------------------------------------------------------
    @on("response.completed", "response.incomplete")
    def on_completed(self, data: dict[str, Any]) -> None:
        response = fields_of(data.get("response"))
        self.announce(response.get("id"), response.get("model"))
        status = str(response.get("status") or "completed")
        if data.get("type") == "response.incomplete" or status == "incomplete":
            reason = fields_of(response.get("incomplete_details")).get("reason")
            native = reason if isinstance(reason, str) and reason else "incomplete"
            self.set_finish(native, _INCOMPLETE_FINISH.get(native, "other"))
        else:
            self.set_finish(status, "stop" if status == "completed" else "other")
        usage = response.get("usage")
        if isinstance(usage, dict):
            self.set_usage(usage_from(usage, RESPONSES_USAGE))
        self.terminal_seen = True
        self.complete()

    @on("response.failed")
    def on_failed(self, data: dict[str, Any]) -> None:
        response = fields_of(data.get("response"))
        raise_in_band(response.get("error") or "the response failed")

    @on("error")
    def on_error(self, data: dict[str, Any]) -> None:
        nested = data.get("error")
        raise_in_band(nested if nested else {k: v for k, v in data.items() if k != "type"})


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


__all__ = ["RESPONSES_USAGE", "ResponsesMapper", "build_body"]
