"""OpenAI Chat Completions: the ``POST /chat/completions`` body and the ``chat.completion.chunk`` mapper.

:class:`ChatCompletionsMapper` reads ``choices[0]`` of each chunk (tolerating
``choices: []``/``null``), assembles tool calls by ``index``, maps ``finish_reason``
and the final ``usage`` chunk, and completes at ``data: [DONE]`` (or at EOF after a
``finish_reason``). ``finish_reason: "content_filter"`` completes with ``content_filter``
(partial output kept); ``delta.refusal`` fragments are a refusal (``Message.refusal``,
finish ``content_filter``); compatible servers' ``reasoning_content``/``reasoning`` deltas
stream as reasoning. An assistant message's reasoning is never sent back (the API has
no field for it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rx_allm._sse import SSEEvent
from rx_allm.adapter import Emit, StreamMapper, on, usage_from
from rx_allm.models import FinishReason, Message, Request, ResponseFormat, Tool
from rx_allm.providers.openai.shared import (
    LATER_GPT,
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

_COMPLETION_TOKENS_MODELS = re.compile(rf"^(?:gpt-4o|gpt-4\.1|{LATER_GPT}|o[1-9])")

CHAT_USAGE: dict[str, str | tuple[str, str]] = {
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
    "total_tokens": "total_tokens",
    "cached_input_tokens": ("prompt_tokens_details", "cached_tokens"),
    "reasoning_tokens": ("completion_tokens_details", "reasoning_tokens"),
}
_CHAT_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}

# -- Chat Completions body ---------------------------------------------------------
_CHAT_SKIP = frozenset({"endpoint", "stream", "stream_options"})


def build_body(request: Request, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /chat/completions`` body (``request.options`` merged last)."""
    stream_options: dict[str, Any] = {"include_usage": True}
    for source in (params, request.options):
        value = source.get("stream_options")
        if isinstance(value, Mapping):
            stream_options.update(value)
    body: dict[str, Any] = {
        "model": model,
        "messages": [chat_message(m) for m in request.messages],
        "stream": True,
        "stream_options": stream_options,
    }
    if request.tools:
        body["tools"] = [chat_tool(t) for t in request.tools]
    put(body, "tool_choice", tool_choice(request.tool_choice, flat=False))
    put(body, "response_format", chat_response_format(request.response_format))
    put(body, "temperature", request.temperature)
    if request.max_tokens is not None:
        body[max_tokens_field(model)] = request.max_tokens
    merge_params(body, params, _CHAT_SKIP)
    merge_params(body, request.options, _CHAT_SKIP)
    return body


def max_tokens_field(model: str) -> str:
    """``max_completion_tokens`` for gpt-4o, gpt-4.1, gpt-5+ and the o-series, else ``max_tokens``."""
    return "max_completion_tokens" if _COMPLETION_TOKENS_MODELS.match(model) else "max_tokens"


def chat_message(message: Message) -> dict[str, Any]:
    """One Chat Completions message (assistant tool calls rebuilt, tool results as role ``tool``)."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:
        out["name"] = message.name
    if message.role == "assistant" and message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments_text(c)}}
            for c in message.tool_calls
        ]
    return out


def chat_tool(tool: Tool) -> dict[str, Any]:
    """A tool in the Chat Completions envelope."""
    function = {"name": tool.name, "description": tool.description, "parameters": tool.schema_}
    return {"type": "function", "function": function}


def chat_response_format(response_format: ResponseFormat | None) -> dict[str, Any] | None:
    """``"json_object"``/``"text"`` → ``{"type": ...}``; a json_schema dict or a model class: nested."""
    fmt = normalize_format(response_format)
    if fmt is None:
        return None
    if isinstance(fmt, str):
        return {"type": fmt}
    if fmt.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": json_schema_spec(fmt)}
    return dict(fmt)


class _Slot:
    """A Chat Completions tool call by wire ``index``, buffered until its id and name are known."""

    __slots__ = ("buffer", "id", "key", "name")

    def __init__(self, key: int) -> None:
        self.key = key
        self.id = ""
        self.name = ""
        self.buffer: list[str] = []


class ChatCompletionsMapper(StreamMapper):
    """``chat.completion.chunk`` events → rx_allm events (first choice only)."""

    provider = PROVIDER

    def __init__(self, emit: Emit) -> None:
        super().__init__(emit)
        self._slots: dict[int, _Slot] = {}  # wire index → the call assembled there
        self._keys = 0

    def handle(self, event: SSEEvent) -> None:
        if event.data.startswith("[DONE]"):
            self.terminal_seen = True
            self.complete()
        else:
            super().handle(event)

    def frame_name(self, event: SSEEvent, data: dict[str, Any]) -> str:
        """``"error"`` for an in-band error object, else ``"chunk"`` (the SSE event name is not used)."""
        return "error" if data.get("error") else "chunk"

    @on("chunk")
    def _chunk(self, chunk: dict[str, Any]) -> None:
        if chunk.get("id") or chunk.get("choices") != []:  # not Azure's empty prompt-filter chunk
            self.announce(chunk.get("id"), chunk.get("model"))
        choice = _first_choice(chunk.get("choices"))
        if choice is not None:
            self._choice(choice)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.set_usage(usage_from(usage, CHAT_USAGE))

    @on("error")
    def _error(self, chunk: dict[str, Any]) -> None:
        self.announce()
        raise_in_band(chunk["error"])

    def complete(self) -> None:
        for slot in self._slots.values():  # calls whose id or name never arrived
            if slot.key not in self.calls:
                self._open(slot)
        super().complete()

    def _choice(self, choice: dict[str, Any]) -> None:
        delta = fields_of(choice.get("delta"))
        self.reasoning_delta(0, delta.get("reasoning_content") or delta.get("reasoning"))
        self.text_delta(delta.get("content"))
        self.refusal_delta(delta.get("refusal"))
        fragments = delta.get("tool_calls")
        if isinstance(fragments, list):
            for fragment in fragments:
                if isinstance(fragment, dict):
                    self._tool_fragment(fragment)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finish(finish)

    def _tool_fragment(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index")
        index = index if isinstance(index, int) else 0
        function = fields_of(fragment.get("function"))
        call_id = opt_text(fragment.get("id")) or ""
        slot = self._slots.get(index)
        if slot is None or (call_id and slot.key in self.calls and call_id != self.calls[slot.key].id):
            slot = self._slots[index] = _Slot(self._keys)  # a new call (a server may reuse an index)
            self._keys += 1
        arguments = function.get("arguments")
        if slot.key in self.calls:
            self.call_delta(slot.key, arguments)
            return
        slot.id = slot.id or call_id  # a repeated id is never concatenated
        slot.name = slot.name or opt_text(function.get("name")) or ""
        if isinstance(arguments, str) and arguments:
            slot.buffer.append(arguments)
        if slot.id and slot.name:
            self._open(slot)

    def _open(self, slot: _Slot) -> None:
        self.open_call(slot.key, slot.id or f"call_{slot.key}", slot.name)
        self.call_delta(slot.key, "".join(slot.buffer))
        slot.buffer.clear()

    def _finish(self, native: str) -> None:
        self.set_finish(native, _CHAT_FINISH.get(native, "other"))
        self.terminal_seen = True


def _first_choice(choices: Any) -> dict[str, Any] | None:
    """The choice with index 0 (``choices`` may be empty, null, or hold other indexes)."""
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
            return choice
    return None


__all__ = ["CHAT_USAGE", "ChatCompletionsMapper", "build_body", "max_tokens_field"]
