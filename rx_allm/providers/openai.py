"""OpenAI: the Chat Completions and Responses streaming endpoints.

``OpenAI.stream`` resolves the key and the endpoint, builds the JSON body and returns
:func:`~rx_allm.transport.http_stream` (cold: one POST per subscription). The endpoint
is ``adapter_opts["endpoint"]`` (``"chat_completions"`` or ``"responses"``), else chosen
by model: ``gpt-5`` and later and the ``o1``..``o9`` reasoning series use Responses,
everything else Chat Completions.

Two mappers turn the SSE events into rx_allm events:

* :class:`ChatCompletionsMapper` reads ``choices[0]`` of each chunk (tolerating
  ``choices: []``/``null``), assembles tool calls by ``index``, maps ``finish_reason``
  and the final ``usage`` chunk, and completes at ``data: [DONE]`` (or at EOF after a
  ``finish_reason``). ``finish_reason: "content_filter"`` ends the stream with
  ``AdapterError("content_filter")`` after the partial output.
* :class:`ResponsesMapper` dispatches on the event ``type``: text deltas, function
  calls keyed by item id (``call_id`` is the event id), the reasoning summary (kept in
  ``message_completed.metadata["reasoning"]``), and the terminal
  ``response.completed``/``response.incomplete``/``response.failed``/``error`` events.

In-band error frames and HTTP error bodies (``{"error": {"message", "type", "param",
"code"}}``) are classified by :data:`DIALECT`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from reactivex import Observable

from rx_allm.adapter import StreamOptions
from rx_allm.errors import AdapterError
from rx_allm.events import Event, ToolCallCompleted
from rx_allm.http_errors import ErrorBody, ErrorDialect, error_body_object, in_band_error
from rx_allm.models import FinishReason, Message, Request, Tool, ToolCall
from rx_allm.providers.base import (
    Emit,
    StreamMapper,
    base_url,
    json_bytes,
    resolve_api_key,
    system_text,
    transport_options,
    usage_from,
)
from rx_allm.sse import SSEEvent
from rx_allm.transport import HttpCall, http_stream

PROVIDER = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
ENV_VARS = ("OPENAI_API_KEY",)

_LATER_GPT = r"gpt-(?:[5-9]|\d{2,})"  # gpt-5 and every later generation
_RESPONSES_MODELS = re.compile(rf"^(?:{_LATER_GPT}|o[1-9])")
_COMPLETION_TOKENS_MODELS = re.compile(rf"^(?:gpt-4o|gpt-4\.1|{_LATER_GPT}|o[1-9])")
_TOOL_CHOICE_MODES = {"auto": "auto", "none": "none", "required": "required", "any": "required"}

CHAT_USAGE: dict[str, str | tuple[str, str]] = {
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
    "total_tokens": "total_tokens",
    "cached_input_tokens": ("prompt_tokens_details", "cached_tokens"),
    "reasoning_tokens": ("completion_tokens_details", "reasoning_tokens"),
}
RESPONSES_USAGE: dict[str, str | tuple[str, str]] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "total_tokens": "total_tokens",
    "cached_input_tokens": ("input_tokens_details", "cached_tokens"),
    "reasoning_tokens": ("output_tokens_details", "reasoning_tokens"),
}
_CHAT_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
_INCOMPLETE_FINISH: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


# -- errors ---------------------------------------------------------------------
def _opt_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value) or None
    return None


def error_info(error: Any) -> ErrorBody:
    """An OpenAI error object (``{"message", "type", "param", "code"}``, or a bare message string)."""
    if isinstance(error, str):
        return ErrorBody(message=error or None)
    if not isinstance(error, dict):
        return ErrorBody()
    param = _opt_text(error.get("param"))
    return ErrorBody(
        message=_opt_text(error.get("message")),
        type=_opt_text(error.get("type")),
        code=_opt_text(error.get("code")),
        metadata={"error_param": param} if param else {},
    )


def read_error_body(body: Any) -> ErrorBody:
    """What an HTTP error body says: ``{"error": {...}}``, ``{"error": "text"}`` or a bare error object."""
    body = error_body_object(body)
    return error_info(body["error"] if body.get("error") is not None else body)


DIALECT = ErrorDialect(
    provider=PROVIDER,
    label="OpenAI",
    read_body=read_error_body,
    context_markers=("maximum context length", "context_length_exceeded", "context window", "context length"),
    content_filter_markers=("content_filter", "content filter", "content management policy"),
    type_reasons={
        "context_length_exceeded": "context_length_exceeded",
        "content_filter": "content_filter",
        "content_policy_violation": "content_filter",
        "server_error": "provider_unavailable",
        "rate_limit_exceeded": "rate_limited",
        "insufficient_quota": "rate_limited",
        "requests": "rate_limited",
        "tokens": "rate_limited",
        "invalid_api_key": "authentication_failed",
        "invalid_request_error": "invalid_request",
        "invalid_prompt": "invalid_request",
        "model_not_found": "invalid_request",
    },
)


def _unsupported(message: str) -> AdapterError:
    return AdapterError("unsupported_feature", message, provider=PROVIDER)


# -- the adapter ----------------------------------------------------------------
class OpenAI:
    """Streams OpenAI Chat Completions or Responses (``adapter_opts``: ``api_key``, ``base_url``,
    ``endpoint``, ``organization``, ``project``, ``session``)."""

    name = "openai"
    requires_model = True

    def stream(self, request: Request, opts: StreamOptions) -> Observable[Event]:
        """Pre-flight (raising), then a cold Observable performing one POST per subscription."""
        key = resolve_api_key(PROVIDER, opts, ENV_VARS)
        model = request.model or opts.model or ""
        endpoint = ENDPOINTS[select_endpoint(model, opts)]
        check_supported(request, opts, endpoint.name)
        call = HttpCall(
            url=base_url(opts, DEFAULT_BASE_URL) + endpoint.path,
            body=json_bytes(endpoint.build(request, model, opts.params)),
            headers=request_headers(key, opts.adapter_opts),
            new_mapper=endpoint.mapper,
            dialect=DIALECT,
            **transport_options(opts),
        )
        return http_stream(call)


def select_endpoint(model: str, opts: StreamOptions) -> str:
    """``"chat_completions"`` or ``"responses"``: the explicit option, else by model."""
    endpoint = opts.params.get("endpoint") or opts.adapter_opts.get("endpoint")
    if endpoint is None:
        return "responses" if _RESPONSES_MODELS.match(model) else "chat_completions"
    if endpoint not in ENDPOINTS:
        raise _unsupported(f"unknown OpenAI endpoint {endpoint!r}: use 'chat_completions' or 'responses'")
    return str(endpoint)


def check_supported(request: Request, opts: StreamOptions, endpoint: str) -> None:
    """Refuse combinations this adapter cannot stream faithfully (``unsupported_feature``)."""
    choices = request.options.get("n", opts.params.get("n"))
    if isinstance(choices, int) and choices > 1:
        raise _unsupported("OpenAI streams are mapped for one choice; n > 1 is not supported")
    if endpoint == "chat_completions" and opts.params.get("reasoning_summary") is not None:
        raise _unsupported("reasoning_summary needs the Responses endpoint (endpoint='responses')")
    for i, message in enumerate(request.messages):
        if message.role == "system" and _has_non_text(message.content):
            raise _unsupported(f"messages.{i}: a system message can only carry text parts")


def _has_non_text(content: str | list[dict[str, Any]]) -> bool:
    return not isinstance(content, str) and any(part.get("type", "text") != "text" for part in content)


def request_headers(key: str, adapter_opts: Mapping[str, Any]) -> dict[str, str]:
    """Authorization, JSON in, SSE out, and the optional organization/project headers."""
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    for option, header in (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project")):
        value = adapter_opts.get(option)
        if value:
            headers[header] = str(value)
    return headers


# -- request bodies: pieces shared by both endpoints ---------------------------------
def arguments_text(call: ToolCall) -> str:
    """A past call's arguments as the JSON text OpenAI expects."""
    return call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False)


def tool_choice(choice: str | dict[str, Any] | None, flat: bool) -> str | dict[str, Any] | None:
    """Modes pass through; a tool name (or a function choice of either endpoint's shape) is translated."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in _TOOL_CHOICE_MODES:
            return _TOOL_CHOICE_MODES[choice]
        name: Any = choice
    elif choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        if not isinstance(name, str):
            return choice
    else:
        return choice
    return {"type": "function", "name": name} if flat else {"type": "function", "function": {"name": name}}


def json_schema_spec(fmt: Mapping[str, Any]) -> dict[str, Any]:
    """``name``/``schema``/``strict``/``description`` of a json_schema format (nested or flat form)."""
    nested = fmt.get("json_schema")
    spec = nested if isinstance(nested, dict) else fmt
    out = {"name": spec.get("name"), "schema": spec.get("schema")}
    for key in ("strict", "description"):
        if key in spec:
            out[key] = spec[key]
    return out


def _merge_params(body: dict[str, Any], params: Mapping[str, Any], skip: frozenset[str]) -> None:
    for key, value in params.items():
        if key not in skip and value is not None:
            body[key] = value


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


# -- Chat Completions body ---------------------------------------------------------
_CHAT_SKIP = frozenset({"endpoint", "stream", "stream_options"})


def chat_body(request: Request, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
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
    _put(body, "tool_choice", tool_choice(request.tool_choice, flat=False))
    _put(body, "response_format", chat_response_format(request.response_format))
    _put(body, "temperature", request.temperature)
    if request.max_tokens is not None:
        body[max_tokens_field(model)] = request.max_tokens
    _merge_params(body, params, _CHAT_SKIP)
    _merge_params(body, request.options, _CHAT_SKIP)
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


def chat_response_format(fmt: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """``"json_object"``/``"text"`` → ``{"type": ...}``; a json_schema format gets OpenAI's nested shape."""
    if fmt is None:
        return None
    if isinstance(fmt, str):
        return {"type": fmt}
    if fmt.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": json_schema_spec(fmt)}
    return dict(fmt)


# -- Responses body ------------------------------------------------------------------
_RESPONSES_SKIP = frozenset({"endpoint", "stream", "reasoning_effort", "reasoning_summary", "verbosity"})


def responses_body(request: Request, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
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
    _put(body, "tool_choice", tool_choice(request.tool_choice, flat=True))
    _put(body, "text", responses_text(request.response_format, params.get("verbosity")))
    _put(body, "max_output_tokens", request.max_tokens)
    _put(body, "temperature", request.temperature)
    _put(body, "reasoning", responses_reasoning(params))
    _merge_params(body, params, _RESPONSES_SKIP)
    _merge_params(body, request.options, frozenset({"stream"}))
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
        if message.content or not message.tool_calls:
            items.append({"role": message.role, "content": responses_content(message)})
        items.extend(
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": arguments_text(c)}
            for c in message.tool_calls
        )
    return items


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


def responses_text(fmt: str | dict[str, Any] | None, verbosity: Any) -> dict[str, Any] | None:
    """The ``text`` object: ``format`` from the response format, ``verbosity`` from the params."""
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


# -- stream mapping: Chat Completions ------------------------------------------------
def _fields(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def raise_in_band(error: Any) -> None:
    """Raise the typed error an in-band OpenAI error object stands for."""
    raise in_band_error(DIALECT, error_info(error))


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

    def feed(self, event: SSEEvent) -> None:
        if event.data.startswith("[DONE]"):
            self.terminal_seen = True
            self.complete()
            return
        chunk = self.json_object(event.data)
        if chunk.get("error"):
            raise_in_band(chunk["error"])
        choice = _first_choice(chunk.get("choices"))
        if choice is not None:
            self._choice(choice)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.set_usage(usage_from(usage, CHAT_USAGE))

    def complete(self, calls_completed: Sequence[ToolCallCompleted] | None = None) -> None:
        for slot in self._slots.values():  # calls whose id or name never arrived
            if slot.key not in self.calls:
                self._open(slot)
        super().complete(calls_completed)

    def _choice(self, choice: dict[str, Any]) -> None:
        delta = _fields(choice.get("delta"))
        self.text_delta(delta.get("content"))
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
        function = _fields(fragment.get("function"))
        call_id = _opt_text(fragment.get("id")) or ""
        slot = self._slots.get(index)
        if slot is None or (call_id and slot.key in self.calls and call_id != self.calls[slot.key].id):
            slot = self._slots[index] = _Slot(self._keys)  # a new call (a server may reuse an index)
            self._keys += 1
        arguments = function.get("arguments")
        if slot.key in self.calls:
            self.call_delta(slot.key, arguments)
            return
        slot.id = slot.id or call_id  # a repeated id is never concatenated
        slot.name = slot.name or _opt_text(function.get("name")) or ""
        if isinstance(arguments, str) and arguments:
            slot.buffer.append(arguments)
        if slot.id and slot.name:
            self._open(slot)

    def _open(self, slot: _Slot) -> None:
        self.open_call(slot.key, slot.id or f"call_{slot.key}", slot.name)
        self.call_delta(slot.key, "".join(slot.buffer))
        slot.buffer.clear()

    def _finish(self, native: str) -> None:
        finish = _CHAT_FINISH.get(native, "other")
        if finish == "content_filter":
            raise AdapterError(
                "content_filter", "OpenAI stopped the reply: finish_reason content_filter", provider=PROVIDER
            )
        if finish != native:
            self.completion_metadata["native_finish_reason"] = native
        self.finish = finish
        self.terminal_seen = True


def _first_choice(choices: Any) -> dict[str, Any] | None:
    """The choice with index 0 (``choices`` may be empty, null, or hold other indexes)."""
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
            return choice
    return None


# -- stream mapping: Responses ---------------------------------------------------------
Handler = Callable[["ResponsesMapper", dict[str, Any]], None]


class ResponsesMapper(StreamMapper):
    """Responses API events → rx_allm events (dispatch on ``type``, else the SSE event name)."""

    provider = PROVIDER
    handlers: ClassVar[dict[str, Handler]] = {}

    def __init__(self, emit: Emit) -> None:
        super().__init__(emit)
        self._by_output: dict[int, str] = {}  # output_index → item id
        self._summary: list[str] = []
        self._summary_part: tuple[Any, Any] | None = None

    def feed(self, event: SSEEvent) -> None:
        data = self.json_object(event.data)
        kind = data.get("type")
        handler = self.handlers.get(kind if isinstance(kind, str) else event.event)
        if handler is not None:
            handler(self, data)

    # -- output items ----------------------------------------------------------------
    def on_text(self, data: dict[str, Any]) -> None:
        self.text_delta(data.get("delta"))

    def on_item_added(self, data: dict[str, Any]) -> None:
        self._function_call(data)

    def on_item_done(self, data: dict[str, Any]) -> None:
        self._set_final(self._function_call(data), _fields(data.get("item")).get("arguments"))

    def on_arguments_delta(self, data: dict[str, Any]) -> None:
        self.call_delta(self._item_key(data), data.get("delta"))

    def on_arguments_done(self, data: dict[str, Any]) -> None:
        key = self._item_key(data)
        self._set_final(key, data.get("arguments"))

    def on_summary_delta(self, data: dict[str, Any]) -> None:
        part = (data.get("item_id"), data.get("summary_index"))
        if self._summary and part != self._summary_part:
            self._summary.append("\n\n")
        self._summary_part = part
        delta = data.get("delta")
        if isinstance(delta, str):
            self._summary.append(delta)

    def _function_call(self, data: dict[str, Any]) -> str | None:
        """Register (once) the function call item of an ``output_item`` event; its key or None."""
        item = _fields(data.get("item"))
        if item.get("type") != "function_call":
            return None
        item_id = _opt_text(item.get("id"))
        call_id = _opt_text(item.get("call_id")) or item_id
        key = item_id or call_id
        if key is None or call_id is None:
            return None
        if key not in self.calls:
            self.open_call(key, call_id, _opt_text(item.get("name")) or "")
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
    def on_completed(self, data: dict[str, Any]) -> None:
        response = _fields(data.get("response"))
        if data.get("type") == "response.incomplete" or response.get("status") == "incomplete":
            reason = _fields(response.get("incomplete_details")).get("reason")
            self.finish = _INCOMPLETE_FINISH.get(reason, "other") if isinstance(reason, str) else "other"
            if reason:
                self.completion_metadata["incomplete_reason"] = reason
        else:
            self.finish = "stop" if response.get("status", "completed") == "completed" else "other"
        usage = response.get("usage")
        if isinstance(usage, dict):
            self.set_usage(usage_from(usage, RESPONSES_USAGE))
        if isinstance(response.get("id"), str):
            self.completion_metadata["response_id"] = response["id"]
        if self._summary:
            self.completion_metadata["reasoning"] = {"summary": "".join(self._summary)}
        self.terminal_seen = True
        self.complete()

    def on_failed(self, data: dict[str, Any]) -> None:
        response = _fields(data.get("response"))
        raise_in_band(response.get("error") or "the response failed")

    def on_error(self, data: dict[str, Any]) -> None:
        nested = data.get("error")
        raise_in_band(nested if nested else {k: v for k, v in data.items() if k != "type"})


ResponsesMapper.handlers = {
    "response.output_text.delta": ResponsesMapper.on_text,
    "response.output_item.added": ResponsesMapper.on_item_added,
    "response.output_item.done": ResponsesMapper.on_item_done,
    "response.function_call_arguments.delta": ResponsesMapper.on_arguments_delta,
    "response.function_call_arguments.done": ResponsesMapper.on_arguments_done,
    "response.reasoning_summary_text.delta": ResponsesMapper.on_summary_delta,
    "response.reasoning_summary.delta": ResponsesMapper.on_summary_delta,
    "response.completed": ResponsesMapper.on_completed,
    "response.incomplete": ResponsesMapper.on_completed,
    "response.failed": ResponsesMapper.on_failed,
    "error": ResponsesMapper.on_error,
}


# -- endpoints --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Endpoint:
    """One OpenAI streaming endpoint: its path, body builder and mapper."""

    name: str
    path: str
    build: Callable[[Request, str, Mapping[str, Any]], dict[str, Any]]
    mapper: Callable[[Emit], StreamMapper]


ENDPOINTS: dict[str, Endpoint] = {
    "chat_completions": Endpoint("chat_completions", "/chat/completions", chat_body, ChatCompletionsMapper),
    "responses": Endpoint("responses", "/responses", responses_body, ResponsesMapper),
}

__all__ = ["DIALECT", "ENDPOINTS", "ChatCompletionsMapper", "OpenAI", "ResponsesMapper"]
