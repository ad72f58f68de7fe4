"""What every HTTP provider shares: its key, its URL, and the per-stream mapping state.

A provider adapter builds an :class:`~rx_allm.transport.HttpCall` in ``stream()``
and gives it a mapper factory. A :class:`StreamMapper` turns the provider's SSE
events of one stream into rx_allm events; the shared bookkeeping (JSON frames,
text, tool calls keyed per provider, usage, the single ``message_completed`` and
the ``stop`` → ``tool_calls`` promotion) lives here once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import SecretStr
from pydantic_core import from_json

from rx_allm.adapter import StreamOptions
from rx_allm.errors import AdapterError, StreamError
from rx_allm.events import (
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.models import FinishReason, Message, Tool, ToolCall, Usage
from rx_allm.redact import remember_secret
from rx_allm.sse import SSEEvent

Emit = Callable[[Event], None]

# The per-chunk events are built by their model's validator itself: the same validation as
# ``TextDelta(delta=...)`` without ``BaseModel.__init__``'s Python frame (a third of the cost).
_new_text_delta: Callable[[dict[str, Any]], TextDelta] = TextDelta.__pydantic_validator__.validate_python
_new_tool_call_delta: Callable[[dict[str, Any]], ToolCallDelta] = (
    ToolCallDelta.__pydantic_validator__.validate_python
)


def resolve_api_key(provider: str, opts: StreamOptions, env_vars: Sequence[str]) -> str:
    """The call's ``api_key``, else ``adapter_opts["api_key"]``, else the first set env var.

    Raises ``AdapterError("authentication_failed")`` (pre-flight) when none is set.
    """
    candidates: list[Any] = [opts.api_key, opts.adapter_opts.get("api_key")]
    candidates += [os.environ.get(name) for name in env_vars]
    for value in candidates:
        key = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(key, str) and key:
            remember_secret(key)
            return key
    names = " or ".join(env_vars)
    raise AdapterError(
        "authentication_failed",
        f"no API key for {provider}: pass api_key, set adapter_opts['api_key'] or {names}",
        provider=provider,
    )


def base_url(opts: StreamOptions, default: str) -> str:
    """``adapter_opts["base_url"]`` (without a trailing slash) or the provider default."""
    url = opts.adapter_opts.get("base_url") or default
    return str(url).rstrip("/")


def loads(data: str) -> Any:
    """``json.loads``, with pydantic-core's parser tried first: about twice as fast per payload.

    Whatever the fast parser accepts, it decodes to the same value; what it refuses (errors,
    lone surrogates) goes to ``json.loads``, so results and errors are its. Nesting deeper
    than pydantic-core's limit raises ``ValueError``: an event holding such a value could not
    be serialized, and ``json.loads`` would exhaust the stack on deeper input.
    """
    try:
        return from_json(data)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise
        try:
            return json.loads(data)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def parse_arguments(raw: str) -> dict[str, Any]:
    """Tool arguments as a dict (``{}`` when the JSON is invalid or not an object)."""
    if not raw:
        return {}
    try:
        value = loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _Call:
    """A tool call being assembled."""

    __slots__ = ("final", "id", "metadata", "name", "raw")

    def __init__(self, call_id: str, name: str) -> None:
        self.id = call_id
        self.name = name
        self.raw: list[str] = []
        self.final: str | None = None  # whole arguments when the provider sends them at the end
        self.metadata: dict[str, Any] = {}

    def arguments_text(self) -> str:
        return self.final if self.final else "".join(self.raw)


class StreamMapper:
    """Per-stream state shared by the provider mappers.

    Subclasses implement :meth:`feed` (one SSE event) and may override
    :meth:`start` (events at open) and :meth:`end` (at EOF). ``finished`` becomes
    True once ``message_completed`` was emitted; the transport then stops reading.
    """

    provider = "provider"

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.finished = False
        self.index = 0  # SSE events seen, for StreamError.event_index
        self.text: list[str] = []
        self.calls: dict[Any, _Call] = {}
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None
        self.terminal_seen = False  # the provider's terminal marker arrived
        self.message_metadata: dict[str, Any] = {}
        self.completion_metadata: dict[str, Any] = {}

    # -- transport hooks -----------------------------------------------------
    def start(self) -> None:
        """Called once the response is an SSE stream: most providers announce the message here."""
        self.emit(MessageStarted())

    def feed(self, event: SSEEvent) -> None:
        """Map one SSE event (raise ``AdapterError``/``StreamError`` for in-band failures)."""
        raise NotImplementedError

    def end(self) -> None:
        """At EOF: complete if the terminal marker was seen, else the stream was truncated."""
        if self.finished:
            return
        if not self.terminal_seen:
            raise StreamError(
                "truncated",
                f"{self.provider} stream ended before its terminal marker",
                provider=self.provider,
                event_index=self.index,
            )
        self.complete()

    # -- helpers for subclasses ----------------------------------------------
    def json_object(self, data: str) -> dict[str, Any]:
        """Parse a ``data:`` payload that must be a JSON object."""
        try:
            value = loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise StreamError(
                "malformed_event",
                f"could not parse SSE data as a JSON object: {data[:200]!r}",
                provider=self.provider,
                event_index=self.index,
            )
        return value

    def text_delta(self, delta: Any) -> None:
        """Emit a non-empty text fragment."""
        if isinstance(delta, str) and delta:
            self.text.append(delta)
            self.emit(_new_text_delta({"delta": delta}))

    def open_call(self, key: Any, call_id: str, name: str) -> _Call:
        """Register a tool call under the provider's key and announce it."""
        call = _Call(call_id, name)
        self.calls[key] = call
        self.emit(ToolCallStarted(id=call_id, name=name))
        return call

    def call_delta(self, key: Any, fragment: Any) -> None:
        """Append an argument fragment to the call registered under ``key`` (unknown keys are dropped)."""
        call = self.calls.get(key)
        if call is not None and isinstance(fragment, str) and fragment:
            call.raw.append(fragment)
            self.emit(_new_tool_call_delta({"id": call.id, "arguments_delta": fragment}))

    def complete_call(self, call: _Call) -> ToolCallCompleted:
        """Emit the assembled call."""
        raw = call.arguments_text()
        event = ToolCallCompleted(
            id=call.id,
            name=call.name,
            arguments=parse_arguments(raw),
            raw_arguments=raw,
            metadata=call.metadata,
        )
        self.emit(event)
        return event

    def set_usage(self, usage: Usage) -> None:
        """Remember the stream's usage (emitted once, before ``message_completed``)."""
        self.usage = usage

    def complete(self, calls_completed: Sequence[ToolCallCompleted] | None = None) -> None:
        """Emit the usage chunk and the one ``message_completed`` (promoting stop → tool_calls).

        ``calls_completed`` lists calls already announced as completed; otherwise every
        registered call is completed here, in first-seen order.
        """
        if self.finished:
            return
        done = (
            list(calls_completed)
            if calls_completed is not None
            else [self.complete_call(call) for call in self.calls.values()]
        )
        if self.usage is not None:
            self.emit(RawChunk(kind="usage", data=self.usage))
        tool_calls = [
            ToolCall(
                id=c.id,
                name=c.name,
                arguments=c.arguments,
                raw_arguments=c.raw_arguments,
                metadata=c.metadata,
            )
            for c in done
        ]
        finish = self.finish
        if tool_calls and finish == "stop":
            finish = "tool_calls"
        message = Message(
            role="assistant",
            content="".join(self.text),
            tool_calls=tool_calls,
            metadata=self.message_metadata,
        )
        self.finished = True
        self.emit(MessageCompleted(message=message, finish_reason=finish, metadata=self.completion_metadata))


def usage_from(raw: Mapping[str, Any], fields: Mapping[str, str | tuple[str, str]]) -> Usage:
    """Build a :class:`Usage` from a provider usage object.

    ``fields`` maps a Usage field to a provider key or a ``(parent, child)`` path;
    provider keys not mapped land in ``extra``. Missing values stay ``None``.
    """
    values: dict[str, Any] = {}
    used: set[str] = set()
    for field, path in fields.items():
        if isinstance(path, tuple):
            parent = raw.get(path[0])
            value = parent.get(path[1]) if isinstance(parent, dict) else None
            used.add(path[0])
        else:
            value = raw.get(path)
            used.add(path)
        if isinstance(value, int) and not isinstance(value, bool):
            values[field] = value
    extra = {k: v for k, v in raw.items() if k not in used and v is not None}
    return Usage(**values, extra=extra)


# -- request building shared by the HTTP providers ---------------------------
def transport_options(opts: StreamOptions) -> dict[str, Any]:
    """The ``HttpCall`` keyword arguments every provider takes from the call: timeouts and ``session``."""
    return {
        "stream_timeout": opts.stream_timeout,
        "request_timeout": opts.request_timeout,
        "session": opts.adapter_opts.get("session"),
    }


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """A request body as compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def system_text(messages: Sequence[Message]) -> str:
    """The text of the system messages joined by a blank line (``""`` when there is none)."""
    return "\n\n".join(m.text for m in messages if m.role == "system" and m.text)


def turns(messages: Sequence[Message]) -> list[Message | list[Message]]:
    """The non-system messages in order, each run of consecutive tool results grouped in a list."""
    out: list[Message | list[Message]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role != "tool":
            out.append(message)
        elif out and isinstance(out[-1], list):
            out[-1].append(message)
        else:
            out.append([message])
    return out


def call_arguments(call: ToolCall) -> dict[str, Any]:
    """A past tool call's arguments as a dict (parsed from ``raw_arguments`` when ``arguments`` is empty)."""
    return dict(call.arguments) if call.arguments else parse_arguments(call.raw_arguments)


def merge_reported(known: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``known`` updated with the values ``update`` reports: a missing or null value never erases one."""
    return {**known, **{k: v for k, v in update.items() if v is not None}}


def tool_spec(tool: Tool, schema_key: str) -> dict[str, Any]:
    """A tool as Anthropic and Gemini declare it: ``name``, schema under ``schema_key``, ``description``."""
    spec: dict[str, Any] = {"name": tool.name, schema_key: tool.schema_}
    if tool.description:
        spec["description"] = tool.description
    return spec


def tool_choice_spec(
    choice: str | dict[str, Any] | None,
    none: dict[str, Any],
    required: dict[str, Any],
    named: Callable[[str], dict[str, Any]],
) -> dict[str, Any] | None:
    """A ``tool_choice`` in a provider's shape: ``None``/``"auto"`` → ``None`` (the default), a dict as given,
    ``"none"`` → ``none``, ``"required"`` or ``"any"`` (a mode word, not a tool name) → ``required``,
    any other name → ``named(name)``."""
    if choice is None or choice == "auto":
        return None
    if isinstance(choice, dict):
        return choice
    if choice == "none":
        return none
    if choice in ("required", "any"):
        return required
    return named(choice)
