"""The Anthropic Messages adapter (``adapter="anthropic"``): ``POST /v1/messages`` with ``stream: true``.

Request: system messages become the top-level ``system`` text, assistant tool calls
``tool_use`` blocks, tool results ``tool_result`` blocks (a run of them is one user
message), ``max_tokens`` defaults to 1024; provider parameters (``thinking``,
``top_k``, ``stop_sequences``, ...) pass through, then ``request.options`` last.
An assistant message's Anthropic reasoning (thinking with its signature, redacted
thinking) is sent back first in its content, as the API requires; other providers'
reasoning is dropped.

Stream: ``message_start`` announces the message; text blocks stream ``text_delta``
and end with one ``text_completed``; ``tool_use`` blocks give started / delta /
completed with the streamed JSON (it replaces the block-start ``input``); thinking
streams as reasoning and ends in ``Message.reasoning`` (signature and redacted data
kept verbatim); the usage of ``message_start`` and the cumulative ``message_delta`` is
emitted once; ``stop_reason: "refusal"`` finishes with ``content_filter`` and the
``stop_details`` explanation in ``Message.refusal``; ``message_stop`` completes. An
``error`` event fails the stream with an :class:`~rx_allm.errors.AdapterError` chosen
by its type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from reactivex import Observable

from rx_allm._classify import ErrorBody, ErrorDialect, error_object, in_band_error
from rx_allm._sse import SSEEvent
from rx_allm._transport import http_stream
from rx_allm.adapter import Emit, StreamMapper, StreamOptions, merge_reported, on, usage_from
from rx_allm.errors import AdapterError
from rx_allm.events import META_STOP_DETAILS, META_STOP_SEQUENCE, Event, RawChunk
from rx_allm.models import FinishReason, Message, Reasoning, Request, ResponseFormat, Usage
from rx_allm.providers._names import ANTHROPIC_OPTIONS, ANTHROPIC_PARAMS
from rx_allm.providers._request import (
    base_url,
    call_arguments,
    http_call,
    image_source,
    resolve_api_key,
    system_text,
    tool_choice_spec,
    tool_spec,
    turns,
)
from rx_allm.schema import normalize_format, schema_of

logger = logging.getLogger("rx_allm")

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
    options = ANTHROPIC_OPTIONS
    params = ANTHROPIC_PARAMS

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
    return _thinking_allowed({**body, **params, **request.options})


def _thinking_allowed(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without ``thinking`` when its final tool-use turn has no thinking block to continue.

    With thinking on, the API refuses a final assistant tool-use turn that does not start
    with a signed thinking block; a turn produced by another provider (or without thinking)
    has none, so thinking is left off for this request rather than sending one that fails.
    """
    thinking = body.get("thinking")
    messages = body.get("messages") or []
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled" or len(messages) < 2:
        return body
    last, turn = messages[-1], messages[-2]
    answers_tools = isinstance(last.get("content"), list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last["content"]
    )
    content = turn.get("content")
    first = content[0].get("type") if isinstance(content, list) and content else None
    if not answers_tools or first in ("thinking", "redacted_thinking"):
        return body
    logger.debug("anthropic: thinking left off: the tool-use turn it continues has no thinking block")
    return {k: v for k, v in body.items() if k != "thinking"}


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
    return {"role": turn.role, "content": _user_content(turn.content)}


def _user_content(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text as is; an ``image_url`` part as an ``image`` block (base64 for a ``data:`` URL, else by URL)."""
    if isinstance(content, str):
        return content
    return [_image_block(part) for part in content]


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    image = image_source(part)
    if image is None:
        return part
    if image.data is None:
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": image.data}}


def _assistant_content(message: Message) -> str | list[dict[str, Any]]:
    blocks = [
        _thinking_block(r)
        for r in message.reasoning
        if r.provider == "anthropic" and (r.signature or r.redacted)
    ]
    if not blocks and not message.tool_calls:
        return message.content
    if isinstance(message.content, list):
        blocks += message.content
    elif message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call_arguments(call)})
    return blocks


def _thinking_block(reasoning: Reasoning) -> dict[str, Any]:
    """A thinking (or redacted thinking) block sent back verbatim, signature included."""
    if reasoning.redacted:
        return {"type": "redacted_thinking", "data": reasoning.redacted}
    return {"type": "thinking", "thinking": reasoning.text, "signature": reasoning.signature}


def _tool_result(message: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    block["content"] = message.content
    if message.metadata.get("is_error"):
        block["is_error"] = True
    return block


# -- stream mapping --------------------------------------------------------------
class _Block:
    """A content block being streamed: its type, its start, and (thinking) its signature."""

    __slots__ = ("kind", "signature", "start")

    def __init__(self, kind: str, start: dict[str, Any]) -> None:
        self.kind = kind
        self.start = start
        self.signature = ""


class AnthropicMapper(StreamMapper):
    """Maps the named events of one Messages stream to rx_allm events."""

    provider = "anthropic"

    def __init__(self, emit: Emit) -> None:
        super().__init__(emit)
        self.blocks: dict[int, _Block] = {}
        self.raw_usage: dict[str, Any] = {}

    def handle(self, event: SSEEvent) -> None:
        if event.event != "ping":  # a keep-alive, whatever its data
            super().handle(event)

    def frame_name(self, event: SSEEvent, data: dict[str, Any]) -> str:
        """The SSE event name, else the data's ``type``; opens the message if ``message_start`` was missed."""
        name = event.event if event.event != "message" else str(data.get("type", "message"))
        if not self.started and name not in ("message_start", "ping"):
            self.announce()  # a stream without message_start still opens with message_started
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
        super().complete()

    # -- handlers ----------------------------------------------------------------
    @on("ping")
    def _ping(self, data: dict[str, Any]) -> None:
        """A keep-alive named in the data only."""

    @on("message_start")
    def _message_start(self, data: dict[str, Any]) -> None:
        message = fields_of(data.get("message"))
        if not self.started:  # only the first message_start's usage counts
            usage = message.get("usage")
            if isinstance(usage, dict):
                self.raw_usage = merge_reported(self.raw_usage, usage)
        self.announce(message.get("id"), message.get("model"))

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
            self.reasoning_delta(index, start.get("thinking"))
        elif block.kind == "text":
            self.text_delta(start.get("text"), key=index)
        elif block.kind != "redacted_thinking":
            self.emit(RawChunk(kind="content_block", data={"index": index, "content_block": start}))

    @on("content_block_delta")
    def _block_delta(self, data: dict[str, Any]) -> None:
        index, delta = data.get("index"), data.get("delta")
        block = self.blocks.get(index) if isinstance(index, int) else None
        if block is None or not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta":
            self.text_delta(delta.get("text"), key=index)
        elif kind == "input_json_delta":
            self.call_delta(index, delta.get("partial_json"))
        elif kind == "thinking_delta":
            self.reasoning_delta(index, delta.get("thinking"))
        elif kind == "signature_delta":
            block.signature += str(delta.get("signature") or "")
        else:
            self.emit(RawChunk(kind="content_block_delta", data={"index": index, "delta": delta}))

    @on("content_block_stop")
    def _block_stop(self, data: dict[str, Any]) -> None:
        index = data.get("index")
        block = self.blocks.pop(index, None) if isinstance(index, int) else None
        if block is None:
            return
        if block.kind == "text":
            self.close_text()
        elif block.kind == "tool_use":
            call = self.calls[index]
            start_input = block.start.get("input")
            if not call.raw and isinstance(start_input, dict):
                call.final = json.dumps(start_input, ensure_ascii=False)
            self.complete_call(call)
        elif block.kind == "thinking":
            self.close_reasoning(index, signature=block.signature or block.start.get("signature"))
        elif block.kind == "redacted_thinking":
            self.close_reasoning(index, redacted=block.start.get("data"))

    @on("message_delta")
    def _message_delta(self, data: dict[str, Any]) -> None:
        delta = fields_of(data.get("delta"))
        reason = delta.get("stop_reason")
        if isinstance(reason, str):
            self.set_finish(reason, STOP_REASONS.get(reason, "other"))
            self.terminal_seen = True  # EOF after a stop reason still completes
        details = delta.get("stop_details")
        if isinstance(details, dict):
            self.completion_metadata[META_STOP_DETAILS] = details
        if reason == "refusal":
            self.refusal_delta(fields_of(details).get("explanation"))
            self.refusal = self.refusal or ""
        if isinstance(delta.get("stop_sequence"), str):
            self.completion_metadata[META_STOP_SEQUENCE] = delta["stop_sequence"]
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


def fields_of(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty one."""
    return value if isinstance(value, dict) else {}


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
