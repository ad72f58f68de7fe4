"""The Google Gemini adapter (``adapter="gemini"``): ``streamGenerateContent?alt=sse``.

Request: ``contents`` with roles ``user``/``model``, system messages as
``systemInstruction``, ``generationConfig`` from ``max_tokens``, ``temperature``,
``response_format`` and generation parameters (snake_case names such as ``top_p``
or ``thinking_config`` are accepted), ``tools: [{functionDeclarations}]``,
``toolConfig`` from ``tool_choice``. Past tool calls are ``functionCall`` parts
(their ``thoughtSignature`` echoed from ``ToolCall.metadata[THOUGHT_SIGNATURE]``; with
thinking on, the first call of a turn without one gets Gemini's documented stand-in); a Gemini reasoning
signature from a text part goes back on the first text part; tool results are
``functionResponse`` parts named after the call they answer. Other providers' reasoning
is dropped. ``request.options`` is merged last.

Stream: every ``data:`` frame is a whole ``GenerateContentResponse``. Text parts
stream ``text_delta``; thought summaries stream as reasoning and end in
``Message.reasoning`` with the signature of a non-call part; each ``functionCall``
gives ``tool_call_started`` and ``tool_call_completed`` at once (Gemini sends whole
arguments; an id is synthesized when the call has none); ``usageMetadata`` running
totals are merged and emitted once, ``output_tokens`` counting thoughts as every
provider does; a ``finishReason`` is the terminal marker and the message completes at
EOF after it (``MALFORMED_FUNCTION_CALL`` and its kin finish with ``"other"``, the
native value kept). A blocked prompt or an ``{"error": ...}`` frame fails the stream
with an ``AdapterError``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from reactivex import Observable

from rx_allm._classify import STATUS_REASONS, ErrorBody, ErrorDialect, error_object, in_band_error
from rx_allm._sse import SSEEvent
from rx_allm._transport import http_stream
from rx_allm.adapter import Emit, StreamMapper, StreamOptions, merge_reported, on, usage_from
from rx_allm.errors import AdapterError
from rx_allm.events import THOUGHT_SIGNATURE, Event
from rx_allm.models import FinishReason, Message, Request, Usage
from rx_allm.providers._names import GEMINI_OPTIONS, GEMINI_PARAMS, GENERATION_FIELDS
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
from rx_allm.schema import output_type, schema_of, strict_json_schema

#: The ``thoughtSignature`` Gemini documents for a function call it did not produce (a call
#: from another model or built by hand): thinking models then accept the turn.
UNSIGNED_CALL = "skip_thought_signature_validator"
_THOUGHTS = "thoughts"  # the key of the one reasoning block of a Gemini reply
#: Prefix of the ids made up for calls Gemini sent without one (never sent back as ids).
SYNTHETIC_ID_PREFIX = "rxallm_fc_"

_CONTENT_FILTER = ("SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII")
_IMAGE_FILTER = ("IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION")
#: Finish values of a stream that ended without a usable answer (not a failed request).
_UNUSABLE = (
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "MISSING_THOUGHT_SIGNATURE",
    "MALFORMED_RESPONSE",
)
FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_CONTENT_FILTER + _IMAGE_FILTER, "content_filter"),
    **dict.fromkeys(_UNUSABLE, "other"),
}

#: Google RPC status → reason (the HTTP status, when there is one, outranks it).
STATUS_NAMES: dict[str, str] = {
    "INVALID_ARGUMENT": "invalid_request",
    "FAILED_PRECONDITION": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "NOT_FOUND": "invalid_request",
    "UNAUTHENTICATED": "authentication_failed",
    "PERMISSION_DENIED": "authentication_failed",
    "RESOURCE_EXHAUSTED": "rate_limited",
    "INTERNAL": "provider_unavailable",
    "UNAVAILABLE": "provider_unavailable",
    "DEADLINE_EXCEEDED": "timeout",
}

_USAGE_FIELDS: dict[str, str | tuple[str, str]] = {
    "input_tokens": "promptTokenCount",
    "output_tokens": "candidatesTokenCount",
    "total_tokens": "totalTokenCount",
    "cached_input_tokens": "cachedContentTokenCount",
    "reasoning_tokens": "thoughtsTokenCount",
}

_PARAM_ALIASES = {"stop": "stopSequences", "max_tokens": "maxOutputTokens"}


def read_error_body(decoded: Any) -> ErrorBody:
    """``{"error": {"code", "message", "status"}}`` (also inside a one-element list) → :class:`ErrorBody`."""
    error = error_object(decoded)
    if error is None:
        return ErrorBody()
    message, status, code = error.get("message"), error.get("status"), error.get("code")
    return ErrorBody(
        message=message if isinstance(message, str) else None,
        type=status if isinstance(status, str) else None,
        code=str(code) if isinstance(code, int) and not isinstance(code, bool) else None,
    )


DIALECT = ErrorDialect(
    provider="gemini",
    label="Gemini",
    read_body=read_error_body,
    context_markers=("exceeds the maximum number of tokens", "input token count"),
    auth_markers=("api key not valid", "api_key_invalid"),
    type_reasons=STATUS_NAMES,
)


class Gemini:
    """Streams ``generateContent``; ``adapter_opts``: ``api_key``, ``base_url``, ``session``."""

    name = "gemini"
    requires_model = True
    env_vars: tuple[str, ...] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    default_base_url = "https://generativelanguage.googleapis.com"
    default_model = "gemini-2.5-flash"
    options = GEMINI_OPTIONS
    params = GEMINI_PARAMS

    def stream(self, request: Request, opts: StreamOptions) -> Observable[Event]:
        """A cold Observable of one ``streamGenerateContent`` call (raises for a missing key)."""
        key = resolve_api_key(self.name, opts, self.env_vars)
        check_supported(request)
        model = str(request.model or opts.model).removeprefix("models/")
        url = (
            f"{base_url(opts, self.default_base_url)}/v1beta/models/{quote(model, safe='')}"
            ":streamGenerateContent?alt=sse"
        )
        body = build_body(request, model, opts.params)
        return http_stream(http_call(opts, url, body, request_headers(key), GeminiMapper, DIALECT))


def check_supported(request: Request) -> None:
    """Refuse a tool result that answers no earlier call and has no name: Gemini needs the function name."""
    names = _call_names(request.messages)
    for message in request.messages:
        call_id = message.tool_call_id or ""
        if message.role == "tool" and not (names.get(call_id) or message.name):
            raise AdapterError(
                "invalid_request",
                f"tool result {call_id!r} matches no earlier tool call (Gemini needs the function name)",
                provider="gemini",
            )


def request_headers(key: str) -> dict[str, str]:
    """The key, JSON in, SSE out."""
    return {"x-goog-api-key": key, "content-type": "application/json", "accept": "text/event-stream"}


def _call_names(messages: Sequence[Message]) -> dict[str, str]:
    return {c.id: c.name for m in messages for c in m.tool_calls}


# -- request body ----------------------------------------------------------------
def build_body(request: Request, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``GenerateContentRequest`` (``request.options`` merged last; ``model`` goes in the URL)."""
    names = _call_names(request.messages)
    body: dict[str, Any] = {"contents": [_content(turn, names) for turn in turns(request.messages)]}
    system = system_text(request.messages)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [tool_spec(t, "parameters") for t in request.tools]}]
    tool_config = tool_choice_spec(
        request.tool_choice,
        none={"functionCallingConfig": {"mode": "NONE"}},
        required={"functionCallingConfig": {"mode": "ANY"}},
        named=lambda name: {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}},
    )
    if tool_config is not None:
        body["toolConfig"] = tool_config
    config = _generation_config(request)
    for key, value in params.items():
        name = _PARAM_ALIASES.get(key) or _camel(key)
        if name == "generationConfig" and isinstance(value, dict):
            config.update(value)
        elif name in GENERATION_FIELDS:
            config[name] = value
        else:
            body[name] = value
    if config:
        body["generationConfig"] = config
    if "thinkingConfig" in config or model.removeprefix("models/").startswith("gemini-3"):
        _sign_foreign_calls(body["contents"])
    return {**body, **request.options}


def _sign_foreign_calls(contents: list[dict[str, Any]]) -> None:
    """Thinking models refuse a turn whose first call has no signature: a call made elsewhere
    gets Gemini's documented stand-in."""
    for content in contents:
        calls = [p for p in content["parts"] if "functionCall" in p]
        if content["role"] == "model" and calls and "thoughtSignature" not in calls[0]:
            calls[0]["thoughtSignature"] = UNSIGNED_CALL


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _generation_config(request: Request) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    fmt = request.response_format
    model = output_type(fmt)
    kind = "json_schema" if model is not None else fmt.get("type") if isinstance(fmt, dict) else fmt
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if model is not None:
        config["responseJsonSchema"] = strict_json_schema(model)
    elif kind == "json_schema" and isinstance(fmt, dict):
        config["responseSchema"] = schema_of(fmt)
    return config


def _content(turn: Message | list[Message], names: dict[str, str]) -> dict[str, Any]:
    if isinstance(turn, list):
        return {"role": "user", "parts": [_function_response(m, names) for m in turn]}
    parts = _parts(turn.content)
    if turn.role != "assistant":
        return {"role": "user", "parts": parts}
    if turn.tool_calls:
        parts = [p for p in parts if p != {"text": ""}]
    signature = next((r.signature for r in turn.reasoning if r.provider == "gemini" and r.signature), None)
    if signature and parts and "text" in parts[0]:
        parts[0] = {**parts[0], "thoughtSignature": signature}
    calls = [_function_call(c.id, c.name, call_arguments(c), c.metadata) for c in turn.tool_calls]
    return {"role": "model", "parts": parts + calls}


def _parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    return [_part(p) for p in content]


def _part(part: dict[str, Any]) -> dict[str, Any]:
    """A content part: text; an ``image_url`` part as ``inlineData`` (a ``data:`` URL) or ``fileData``."""
    if part.get("type", "text") == "text":
        return {"text": part.get("text", "")}
    image = image_source(part)
    if image is None:
        return part
    if image.data is not None:
        return {"inlineData": {"mimeType": image.media_type, "data": image.data}}
    file = {"fileUri": image.url} | ({"mimeType": image.media_type} if image.media_type else {})
    return {"fileData": file}


def _function_call(call_id: str, name: str, args: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": args}
    if call_id and not call_id.startswith(SYNTHETIC_ID_PREFIX):
        call["id"] = call_id
    part: dict[str, Any] = {"functionCall": call}
    if isinstance(metadata.get(THOUGHT_SIGNATURE), str):
        part["thoughtSignature"] = metadata[THOUGHT_SIGNATURE]
    return part


def _function_response(message: Message, names: dict[str, str]) -> dict[str, Any]:
    call_id = message.tool_call_id or ""
    name = names.get(call_id) or message.name or ""  # check_supported refused a result without one
    response: dict[str, Any] = {"name": name, "response": _result_object(message.text)}
    if call_id and not call_id.startswith(SYNTHETIC_ID_PREFIX):
        response["id"] = call_id
    return {"functionResponse": response}


def _result_object(text: str) -> dict[str, Any]:
    """A tool result as the JSON object Gemini expects (non-object results are wrapped)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


# -- stream mapping --------------------------------------------------------------
class GeminiMapper(StreamMapper):
    """Maps the ``GenerateContentResponse`` chunks of one stream to rx_allm events."""

    provider = "gemini"

    def __init__(self, emit: Emit) -> None:
        super().__init__(emit)
        self.raw_usage: dict[str, Any] = {}
        self.signature: str | None = None  # a thoughtSignature on a part that is not a call

    def handle(self, event: SSEEvent) -> None:
        if event.data != "[DONE]":  # some gateways add it; the terminal marker stays finishReason
            super().handle(event)

    def frame_name(self, event: SSEEvent, data: dict[str, Any]) -> str:
        """``"error"`` for an ``{"error": {...}}`` frame, else ``"chunk"`` (SSE event names are not used);
        the message is announced with the first frame, with its ids."""
        self.announce(data.get("responseId"), data.get("modelVersion"))
        return "error" if isinstance(data.get("error"), dict) else "chunk"

    @on("chunk")
    def _chunk(self, chunk: dict[str, Any]) -> None:
        self._prompt_feedback(chunk.get("promptFeedback"))
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):
            self.raw_usage = merge_reported(self.raw_usage, usage)
        candidates = chunk.get("candidates")
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
            self._candidate(candidates[0])

    def complete(self) -> None:
        """Emit the latest usage totals and the message (calls were completed as they arrived)."""
        if self.raw_usage:
            self.set_usage(gemini_usage(self.raw_usage))
        if self.signature is not None or _THOUGHTS in self._thoughts:
            self.close_reasoning(_THOUGHTS, signature=self.signature)
        super().complete()

    def close_all_reasoning(self) -> None:
        """Thoughts stay open until the message ends: their signature may come with the last part."""

    # -- pieces of a chunk -------------------------------------------------------
    @on("error")
    def _error(self, chunk: dict[str, Any]) -> None:
        info = read_error_body(chunk)
        status = int(info.code) if info.code else 0
        raise in_band_error(DIALECT, info, default=STATUS_REASONS.get(status, "provider_unavailable"))

    def _prompt_feedback(self, feedback: Any) -> None:
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            raise AdapterError(
                "content_filter",
                f"Gemini blocked the prompt: {reason}",
                provider=self.provider,
                metadata={"block_reason": reason},
            )

    def _candidate(self, candidate: dict[str, Any]) -> None:
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                self._part(part)
        reason = candidate.get("finishReason")
        if isinstance(reason, str):
            self.set_finish(reason, FINISH_REASONS.get(reason, "other"))
            self.terminal_seen = True

    def _part(self, part: dict[str, Any]) -> None:
        call = part.get("functionCall")
        text = part.get("text")
        if isinstance(call, dict):
            self._function_call(call, part.get("thoughtSignature"))
        elif part.get("thought") is True:
            self.reasoning_delta(_THOUGHTS, text)
        else:
            self.text_delta(text)
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature and not isinstance(call, dict):
            self.signature = signature

    def _function_call(self, spec: dict[str, Any], signature: Any) -> None:
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            return
        n = len(self.calls)
        call_id = spec.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = f"{SYNTHETIC_ID_PREFIX}{n}_{secrets.token_hex(6)}"
        call = self.open_call(n, call_id, name)
        args = spec.get("args")
        call.final = json.dumps(args if isinstance(args, dict) else {}, ensure_ascii=False)
        if isinstance(signature, str) and signature:
            call.metadata[THOUGHT_SIGNATURE] = signature
        self.complete_call(call)


def gemini_usage(raw: dict[str, Any]) -> Usage:
    """Gemini usage in rx_allm terms: ``output_tokens`` includes the thoughts, as for every provider."""
    usage = usage_from(raw, _USAGE_FIELDS)
    if usage.output_tokens is None and usage.reasoning_tokens is None:
        return usage
    return usage.model_copy(
        update={"output_tokens": (usage.output_tokens or 0) + (usage.reasoning_tokens or 0)}
    )


__all__ = [
    "DIALECT",
    "FINISH_REASONS",
    "GENERATION_FIELDS",
    "Gemini",
    "GeminiMapper",
    "STATUS_NAMES",
    "SYNTHETIC_ID_PREFIX",
    "build_body",
    "check_supported",
    "read_error_body",
    "request_headers",
]
