"""The Anthropic Messages adapter (``adapter="anthropic"``): ``POST /v1/messages`` with ``stream: true``.

Request: system messages become the top-level ``system`` text, assistant tool calls
``tool_use`` blocks, tool results ``tool_result`` blocks (a run of them is one user
message), ``max_tokens`` defaults to 1024; provider parameters (``thinking``,
``top_k``, ``stop_sequences``, ...) pass through, then ``request.options`` last.
Thinking blocks kept in an assistant message's ``metadata["thinking"]`` are sent
back first in its content, as the API requires.

Stream: ``message_start`` announces the message; text blocks stream ``text_delta``
and end with one ``text_completed``; ``tool_use`` blocks give started / delta /
completed with the streamed JSON (it replaces the block-start ``input``); thinking
becomes ``raw_chunk`` events and ``message.metadata["thinking"]`` (signature kept
verbatim); the usage of ``message_start`` and the cumulative ``message_delta`` is
emitted once; ``message_stop`` completes. An ``error`` event fails the stream with
an :class:`~rx_allm.errors.AdapterError` chosen by its type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reactivex import Observable

from rx_allm._classify import ErrorBody, ErrorDialect, error_object, in_band_error
from rx_allm._sse import SSEEvent
from rx_allm._transport import http_stream
from rx_allm.adapter import Emit, StreamMapper, StreamOptions, merge_reported, on, usage_from
from rx_allm.errors import AdapterError
from rx_allm.events import Event, MessageStarted, RawChunk, TextCompleted
from rx_allm.models import FinishReason, Message, Request, ResponseFormat, Usage
from rx_allm.providers._request import (
    base_url,
    call_arguments,
    http_call,
    resolve_api_key,
    system_text,
    tool_choice_spec,
    tool_spec,
    turns,
)
from rx_allm.schema import normalize_format, schema_of

DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "other",
}

ERROR_TYPES: dict[str, str] = {
    "overloaded_error": "provider_unavailable",
    "api_error": "provider_unavailable",
    "rate_limit_error": "rate_limited",
    "invalid_request_error": "invalid_request",
    "request_too_large": "invalid_request",
    "not_found_error": "invalid_request",
    "authentication_error": "authentication_failed",
    "permission_error": "authentication_failed",
    "timeout_error": "timeout",
}

_USAGE_FIELDS: dict[str, str | tuple[str, str]] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cached_input_tokens": "cache_read_input_tokens",
    "cache_write_input_tokens": "cache_creation_input_tokens",
}


def read_error_body(decoded: Any) -> ErrorBody:
    """``{"type": "error", "error": {"type", "message"}}`` → :class:`ErrorBody`."""
    error = error_object(decoded, in_list=False)
    if error is None:
        return ErrorBody()
    message, kind = error.get("message"), error.get("type")
    return ErrorBody(
        message=message if isinstance(message, str) else None, type=kind if isinstance(kind, str) else None
    )


DIALECT = ErrorDialect(
    provider="anthropic",
    label="Anthropic",
    read_body=read_error_body,
    context_markers=("prompt is too long", "context window", "context length"),
    type_reasons=ERROR_TYPES,
)


class Anthropic:
    """Streams the Messages API.

    ``adapter_opts``: ``api_key``, ``base_url``, ``anthropic_version``, ``session``.
    """

    name = "anthropic"
    requires_model = True
    env_vars: tuple[str, ...] = ("ANTHROPIC_API_KEY",)
    default_base_url = "https://api.anthropic.com"
    default_model = "claude-haiku-4-5"

    def stream(self, request: Request, opts: StreamOptions) -> Observable[Event]:
        """A cold Observable of one ``POST /v1/messages`` (raises for a missing key or ``json_object``)."""
        key = resolve_api_key(self.name, opts, self.env_vars)
        check_supported(request)
        url = f"{base_url(opts, self.default_base_url)}/v1/messages"
        body = build_body(request, str(request.model or opts.model), opts.params)
        headers = request_headers(key, opts.adapter_opts)
        return http_stream(http_call(opts, url, body, headers, AnthropicMapper, DIALECT))


def check_supported(request: Request) -> None:
    """Refuse a ``response_format`` the Messages API cannot express (``json_object``)."""
    _output_config(request.response_format)


def request_headers(key: str, adapter_opts: Mapping[str, Any]) -> dict[str, str]:
    """The key, the API version (``adapter_opts["anthropic_version"]``), JSON in, SSE out."""
    return {
        "x-api-key": key,
        "anthropic-version": str(adapter_opts.get("anthropic_version") or DEFAULT_VERSION),
        "content-type": "application/json",
        "accept": "text/event-stream",
    }


# -- request body ----------------------------------------------------------------
def build_body(request: Request, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The Messages API body for ``request`` (params, then ``request.options``, override the fields)."""
    output_config = _output_config(request.response_format)
    body: dict[str, Any] = {"model": model}
    system = system_text(request.messages)
    if system:
        body["system"] = system
    body["messages"] = [_message(turn) for turn in turns(request.messages)]
    body["max_tokens"] = request.max_tokens or params.get("max_tokens") or DEFAULT_MAX_TOKENS
    if request.tools:
        body["tools"] = [tool_spec(t, "input_schema") for t in request.tools]
    choice = tool_choice_spec(
        request.tool_choice,
        none={"type": "none"},
        required={"type": "any"},
        named=lambda name: {"type": "tool", "name": name},
    )
    if choice is not None:
        body["tool_choice"] = choice
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if output_config is not None:
        body["output_config"] = output_config
    body["stream"] = True
    return {**body, **params, **request.options}


def _output_config(response_format: ResponseFormat | None) -> dict[str, Any] | None:
    """Structured outputs' ``output_config`` for a json_schema format or a model class; None for text."""
    fmt = normalize_format(response_format)
    kind = fmt.get("type") if isinstance(fmt, dict) else fmt
    if kind in (None, "text"):
        return None
    if kind == "json_schema" and isinstance(fmt, dict):
        return {"format": {"type": "json_schema", "schema": schema_of(fmt)}}
    raise AdapterError(
        "unsupported_feature",
        f"the Anthropic adapter does not support response_format {kind!r}",
        provider="anthropic",
    )


def _message(turn: Message | list[Message]) -> dict[str, Any]:
    if isinstance(turn, list):
        return {"role": "user", "content": [_tool_result(m) for m in turn]}
    if turn.role == "assistant":
        return {"role": "assistant", "content": _assistant_content(turn)}
    return {"role": turn.role, "content": turn.content}


def _assistant_content(message: Message) -> str | list[dict[str, Any]]:
    thinking = message.metadata.get("thinking")
    blocks: list[dict[str, Any]] = list(thinking) if isinstance(thinking, list) else []
    if not blocks and not message.tool_calls:
        return message.content
    if isinstance(message.content, list):
        blocks += message.content
    elif message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call_arguments(call)})
    return blocks


def _tool_result(message: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    block["content"] = message.content
    if message.metadata.get("is_error"):
        block["is_error"] = True
    return block


# -- stream mapping --------------------------------------------------------------
class _Block:
    """A content block being streamed: its type and accumulated text/thinking/signature."""

    __slots__ = ("kind", "parts", "signature", "start")

    def __init__(self, kind: str, start: dict[str, Any]) -> None:
        self.kind = kind
        self.start = start
        self.parts: list[str] = []
        self.signature = ""


class AnthropicMapper(StreamMapper):
    """Maps the named events of one Messages stream to rx_allm events."""

    provider = "anthropic"

    def __init__(self, emit: Emit) -> None:
        super().__init__(emit)
        self.blocks: dict[int, _Block] = {}
        self.raw_usage: dict[str, Any] = {}
        self.thinking: list[dict[str, Any]] = []
        self.started = False  # message_started was emitted

    def start(self) -> None:
        """Nothing yet: ``message_start`` announces the message."""

    def handle(self, event: SSEEvent) -> None:
        if event.event != "ping":  # a keep-alive, whatever its data
            super().handle(event)

    def frame_name(self, event: SSEEvent, data: dict[str, Any]) -> str:
        """The SSE event name, else the data's ``type``; opens the message if ``message_start`` was missed."""
        name = event.event if event.event != "message" else str(data.get("type", "message"))
        if not self.started and name not in ("message_start", "ping"):
            self._message_start({})  # a stream without message_start still opens with message_started
        return name

    def unhandled(self, name: str, data: dict[str, Any]) -> None:
        """An event this mapper does not know is passed on as a ``raw_chunk``."""
        self.emit(RawChunk(kind="unknown_event", data={"event": name, "data": data}))

    def complete(self) -> None:
        """Emit the merged usage and the message (tool calls were completed at their block stop)."""
        for index in sorted(self.blocks):  # a block the stream never stopped ends with the message
            self._block_stop({"index": index})
        if self.raw_usage:
            self.set_usage(anthropic_usage(self.raw_usage))
        if self.thinking:
            self.message_metadata["thinking"] = self.thinking
        super().complete()

    # -- handlers ----------------------------------------------------------------
    @on("ping")
    def _ping(self, data: dict[str, Any]) -> None:
        """A keep-alive named in the data only."""

    @on("message_start")
    def _message_start(self, data: dict[str, Any]) -> None:
        if self.started:
            return  # only the first message_start announces the message
        self.started = True
        message = data.get("message")
        message = message if isinstance(message, dict) else {}
        fields = (("provider_id", message.get("id")), ("model", message.get("model")))
        metadata = {k: v for k, v in fields if isinstance(v, str)}
        self.completion_metadata.update(metadata)
        usage = message.get("usage")
        if isinstance(usage, dict):
            self.raw_usage = merge_reported(self.raw_usage, usage)
        self.emit(MessageStarted(metadata=metadata))

    @on("content_block_start")
    def _block_start(self, data: dict[str, Any]) -> None:
        index, start = data.get("index"), data.get("content_block")
        if not isinstance(index, int) or not isinstance(start, dict):
            return
        if index in self.blocks:  # a block restarted at the same index: the previous one ended
            self._block_stop({"index": index})
        block = self.blocks[index] = _Block(str(start.get("type")), start)
        if block.kind == "tool_use":
            self.open_call(index, str(start.get("id") or ""), str(start.get("name") or ""))
        elif block.kind == "thinking":
            block.parts.append(str(start.get("thinking") or ""))
            self.emit(RawChunk(kind="thinking_start", data={"index": index}))
        elif block.kind == "redacted_thinking":
            self.emit(RawChunk(kind="redacted_thinking", data={"index": index, "data": start.get("data")}))
        elif block.kind == "text":
            self._text(block, start.get("text"))
        else:
            self.emit(RawChunk(kind="content_block", data={"index": index, "content_block": start}))

    @on("content_block_delta")
    def _block_delta(self, data: dict[str, Any]) -> None:
        index, delta = data.get("index"), data.get("delta")
        block = self.blocks.get(index) if isinstance(index, int) else None
        if block is None or not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta":
            self._text(block, delta.get("text"))
        elif kind == "input_json_delta":
            self.call_delta(index, delta.get("partial_json"))
        elif kind == "thinking_delta":
            block.parts.append(str(delta.get("thinking") or ""))
            self.emit(RawChunk(kind="thinking_delta", data={"index": index, "delta": delta.get("thinking")}))
        elif kind == "signature_delta":
            block.signature += str(delta.get("signature") or "")
            signature = {"index": index, "signature": delta.get("signature")}
            self.emit(RawChunk(kind="thinking_signature", data=signature))
        else:
            self.emit(RawChunk(kind="content_block_delta", data={"index": index, "delta": delta}))

    def _text(self, block: _Block, text: Any) -> None:
        if isinstance(text, str) and text:
            block.parts.append(text)
            self.text_delta(text)

    @on("content_block_stop")
    def _block_stop(self, data: dict[str, Any]) -> None:
        index = data.get("index")
        block = self.blocks.pop(index, None) if isinstance(index, int) else None
        if block is None:
            return
        if block.kind == "text":
            self.emit(TextCompleted(text="".join(block.parts)))
        elif block.kind == "tool_use":
            call = self.calls[index]
            start_input = block.start.get("input")
            if not call.raw and isinstance(start_input, dict):
                call.final = json.dumps(start_input, ensure_ascii=False)
            self.complete_call(call)
        elif block.kind == "thinking":
            thinking = "".join(block.parts)
            self.thinking.append({"type": "thinking", "thinking": thinking, "signature": block.signature})
        elif block.kind == "redacted_thinking":
            self.thinking.append({"type": "redacted_thinking", "data": block.start.get("data")})

    @on("message_delta")
    def _message_delta(self, data: dict[str, Any]) -> None:
        delta = data.get("delta")
        reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if isinstance(reason, str):
            self.finish = STOP_REASONS.get(reason, "other")
            self.completion_metadata["raw_finish_reason"] = reason
            self.terminal_seen = True  # EOF after a stop reason still completes
        if isinstance(delta, dict) and isinstance(delta.get("stop_sequence"), str):
            self.completion_metadata["stop_sequence"] = delta["stop_sequence"]
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.raw_usage = merge_reported(self.raw_usage, usage)

    @on("message_stop")
    def _message_stop(self, data: dict[str, Any]) -> None:
        self.terminal_seen = True
        self.complete()

    @on("error")
    def _error(self, data: dict[str, Any]) -> None:
        raise in_band_error(DIALECT, read_error_body(data))


def anthropic_usage(raw: dict[str, Any]) -> Usage:
    """Anthropic usage in rx_allm terms: ``input_tokens`` includes cache reads and writes."""
    usage = usage_from(raw, _USAGE_FIELDS)
    uncached = usage.input_tokens
    if uncached is None:
        return usage
    inclusive = uncached + (usage.cached_input_tokens or 0) + (usage.cache_write_input_tokens or 0)
    total = inclusive + usage.output_tokens if usage.output_tokens is not None else None
    extra = {**usage.extra, "uncached_input_tokens": uncached}
    return usage.model_copy(update={"input_tokens": inclusive, "total_tokens": total, "extra": extra})


__all__ = [
    "Anthropic",
    "AnthropicMapper",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_VERSION",
    "DIALECT",
    "ERROR_TYPES",
    "STOP_REASONS",
    "anthropic_usage",
    "build_body",
    "check_supported",
    "read_error_body",
    "request_headers",
]
