"""The adapter contract: ``stream(request, opts) -> Observable[Event]``, and the mapper they share.

An adapter raises :class:`~rx_allm.errors.AdapterError` (or ``EngineError``) for
pre-flight failures and otherwise returns a *cold, lazy* Observable: nothing
happens until it is subscribed, each subscription is one provider request,
disposal cancels that request, and a failure after subscription is the
terminal ``on_error`` carrying an ``AdapterError`` or a ``StreamError``.

An HTTP adapter gives the transport a :class:`StreamMapper` factory: a mapper turns the
provider's SSE events of one stream into rx_allm events; the shared bookkeeping (JSON
frames, text, tool calls keyed per provider, usage, the single ``message_completed`` and
the ``stop`` -> ``tool_calls`` promotion) lives here once.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import SecretStr
from pydantic_core import from_json
from reactivex import Observable

from rx_allm._sse import DEFAULT_MAX_EVENT_BYTES, SSEEvent
from rx_allm.errors import StreamError
from rx_allm.events import (
    META_MODEL,
    META_NATIVE_FINISH_REASON,
    META_PROVIDER,
    META_RESPONSE_ID,
    Event,
    MessageCompleted,
    MessageStarted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    reasoning_completed,
    reasoning_delta,
    refusal_delta,
    usage_chunk,
)
from rx_allm.models import FinishReason, Message, Reasoning, Request, Usage

Emit = Callable[[Event], None]
Handler = Callable[[Any, dict[str, Any]], None]
_H = TypeVar("_H", bound=Handler)

# The per-chunk events are built by their model's validator itself: the same validation as
# ``TextDelta(delta=...)`` without ``BaseModel.__init__``'s Python frame (a third of the cost).
_new_text_delta: Callable[[dict[str, Any]], TextDelta] = TextDelta.__pydantic_validator__.validate_python
_new_tool_call_delta: Callable[[dict[str, Any]], ToolCallDelta] = (
    ToolCallDelta.__pydantic_validator__.validate_python
)


@dataclass(slots=True)
class StreamOptions:
    """Everything the runner resolved for one call, handed to ``adapter.stream``.

    Read-only by contract: the runner builds one per call and every subscription of that
    call's Observable shares it, so an adapter must never assign to it. (It is not a
    frozen dataclass because freezing tripled its construction cost, paid per call.)

    ``params`` are provider parameters (engine params merged under call options)
    that have no :class:`~rx_allm.models.Request` field; ``total_timeout`` (None: no
    bound) limits a whole stream and ``max_event_bytes`` one SSE event; ``call_index`` counts the
    engine's calls (the Fake adapter's script cursor). A key is never shown in a
    repr: ``api_key`` is left out of it and ``adapter_opts["api_key"]`` is held as a
    ``SecretStr``, as on an :class:`~rx_allm.engine.Engine`.
    """

    model: str | None = None
    stream_timeout: float = 60.0
    request_timeout: float = 60.0
    total_timeout: float | None = None
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    request_id: str | None = None
    adapter_opts: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)
    call_index: int = 0

    def __post_init__(self) -> None:
        key = self.adapter_opts.get("api_key")
        if isinstance(key, str):
            self.adapter_opts = {**self.adapter_opts, "api_key": SecretStr(key)}
        if isinstance(self.api_key, SecretStr):  # an engine's params hold their key as SecretStr
            self.api_key = self.api_key.get_secret_value()


@runtime_checkable
class StreamAdapter(Protocol):
    """What an engine's adapter must provide.

    Optional class attributes read by the runner: ``name`` (str, used in errors)
    and ``requires_model`` (bool, default False: pre-flight raises
    ``EngineError("missing_model")`` when True and no model resolved).
    """

    def stream(self, request: Request, opts: StreamOptions) -> Observable[Event]:
        """Return a cold Observable of events for ``request`` (raise for pre-flight failures)."""
        ...


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

    __slots__ = ("done", "final", "id", "metadata", "name", "raw")

    def __init__(self, call_id: str, name: str) -> None:
        self.id = call_id
        self.name = name
        self.raw: list[str] = []
        self.final: str | None = None  # whole arguments when the provider sends them at the end
        self.metadata: dict[str, Any] = {}
        self.done = False  # its tool_call_completed was emitted

    def arguments_text(self) -> str:
        return self.final if self.final else "".join(self.raw)


class _Block:
    """A text or reasoning block being streamed: its id and its text so far."""

    __slots__ = ("id", "key", "parts")

    def __init__(self, block_id: str, key: Any) -> None:
        self.id = block_id
        self.key = key
        self.parts: list[str] = []


def on(*names: str) -> Callable[[_H], _H]:
    """Mark a :class:`StreamMapper` method as the handler of the frames called ``names``."""

    def mark(handler: _H) -> _H:
        setattr(handler, "_frames", names)  # noqa: B010 (a function attribute mypy cannot see)
        return handler

    return mark


class StreamMapper:
    """Per-stream state shared by the provider mappers.

    One dispatch idiom: :meth:`handle` parses a frame's JSON object and calls the method
    marked ``@on(name)`` for the frame's name (:meth:`frame_name`: the SSE event name unless a
    subclass reads it elsewhere); a frame without a handler goes to :meth:`unhandled`.
    Subclasses may override :meth:`start` (events at open) and :meth:`end` (at EOF).
    ``finished`` becomes True once ``message_completed`` was emitted; the transport then
    stops reading.

    The vocabulary every mapper speaks through these helpers: ``message_started`` is
    announced (:meth:`announce`) before the first other event, with the ``META_*`` keys
    known by then; text arrives in blocks with ids (:meth:`text_delta`), each closed by
    one ``text_completed`` (:meth:`close_text`, also implied by a tool call, reasoning or
    the end); reasoning streams as ``raw_chunk(kind="reasoning_delta")`` per block
    (:meth:`reasoning_delta`) and ends as a :class:`~rx_allm.models.Reasoning` in
    ``Message.reasoning`` (:meth:`close_reasoning`); a refusal streams as
    ``raw_chunk(kind="refusal_delta")``, lands in ``Message.refusal`` and finishes the
    message with ``content_filter``.
    """

    provider = "provider"
    handlers: ClassVar[dict[str, Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers = dict(cls.handlers)
        for member in vars(cls).values():
            for name in getattr(member, "_frames", ()):
                handlers[name] = member
        cls.handlers = handlers

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.finished = False
        self.started = False  # message_started was emitted
        self.index = 0  # SSE events seen, for StreamError.event_index
        self.text: list[str] = []
        self.calls: dict[Any, _Call] = {}
        self.completed: list[ToolCallCompleted] = []  # in the order they were emitted
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None
        self.terminal_seen = False  # the provider's terminal marker arrived
        self.message_metadata: dict[str, Any] = {}
        self.completion_metadata: dict[str, Any] = {META_PROVIDER: self.provider}
        self.reasoning: list[Reasoning] = []
        self.refusal: str | None = None
        self._text_block: _Block | None = None
        self._thoughts: dict[Any, _Block] = {}
        self._prefix = secrets.token_hex(4)
        self._blocks = 0

    # -- transport hooks -----------------------------------------------------
    def start(self) -> None:
        """Called once the response is an SSE stream (the message is announced with its first event)."""

    def feed(self, event: SSEEvent) -> None:
        """Count and map one SSE event (the count is ``StreamError.event_index``)."""
        self.index += 1
        self.handle(event)

    def handle(self, event: SSEEvent) -> None:
        """Map one SSE event (raise ``AdapterError``/``StreamError`` for in-band failures)."""
        data = self.json_object(event.data)
        name = self.frame_name(event, data)
        handler = self.handlers.get(name)
        if handler is None:
            self.unhandled(name, data)
        else:
            handler(self, data)

    def frame_name(self, event: SSEEvent, data: dict[str, Any]) -> str:
        """The name a frame is dispatched on: its SSE event name."""
        return event.event

    def unhandled(self, name: str, data: dict[str, Any]) -> None:
        """A frame no handler is marked for: ignored."""

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

    def announce(self, response_id: Any = None, model: Any = None) -> None:
        """Record the reply's id and model (the first non-empty values win); emit ``message_started`` once."""
        meta = self.completion_metadata
        for key, value in ((META_RESPONSE_ID, response_id), (META_MODEL, model)):
            if isinstance(value, str) and value and key not in meta:
                meta[key] = value
        if not self.started:
            self.started = True
            self.emit(MessageStarted(metadata=dict(meta)))

    def set_finish(self, native: str, finish: FinishReason) -> None:
        """The finish reason, with the provider's own value kept under ``META_NATIVE_FINISH_REASON``."""
        self.finish = finish
        self.completion_metadata[META_NATIVE_FINISH_REASON] = native

    def _block_id(self, kind: str) -> str:
        self._blocks += 1
        return f"{kind}_{self._prefix}_{self._blocks}"

    def text_delta(self, delta: Any, key: Any = None, block_id: str | None = None) -> None:
        """Emit a non-empty text fragment of the block ``key`` (a new key or ``block_id`` opens one)."""
        if not isinstance(delta, str) or not delta:
            return
        block = self._text_block
        if block is None or (key is not None and key != block.key) or (block_id and block_id != block.id):
            if not self.started:
                self.announce()
            self.close_text()
            self.close_all_reasoning()
            block = self._text_block = _Block(block_id or self._block_id("text"), key)
        block.parts.append(delta)
        self.text.append(delta)
        self.emit(_new_text_delta({"id": block.id, "delta": delta}))

    def close_text(self) -> None:
        """End the open text block with its ``text_completed`` (nothing when none is open)."""
        block, self._text_block = self._text_block, None
        if block is not None:
            self.emit(TextCompleted(id=block.id, text="".join(block.parts)))

    def reasoning_delta(self, key: Any, delta: Any, block_id: str | None = None) -> None:
        """Emit a non-empty fragment of the reasoning block ``key`` (opened on first use)."""
        if isinstance(delta, str) and delta:
            block = self._thought(key, block_id)
            block.parts.append(delta)
            self.emit(reasoning_delta(block.id, delta))

    def _thought(self, key: Any, block_id: str | None) -> _Block:
        block = self._thoughts.get(key)
        if block is None:
            if not self.started:
                self.announce()
            self.close_text()
            block = self._thoughts[key] = _Block(block_id or self._block_id("reasoning"), key)
        return block

    def close_reasoning(self, key: Any, **fields: Any) -> None:
        """End the reasoning block ``key`` into ``Message.reasoning`` (``fields``: signature, id, ...)."""
        block = self._thoughts.pop(key, None) or _Block(fields.get("id") or self._block_id("reasoning"), key)
        text = fields.pop("text", None) or "".join(block.parts)
        kept = {name: value for name, value in fields.items() if isinstance(value, str) and value}
        reasoning = Reasoning(text=text, provider=self.provider, **kept)
        self.reasoning.append(reasoning)
        self.emit(reasoning_completed(block.id, reasoning))

    def close_all_reasoning(self) -> None:
        """End every open reasoning block (the answer or a tool call begins)."""
        for key in list(self._thoughts):
            self.close_reasoning(key)

    def refusal_delta(self, delta: Any) -> None:
        """Emit a non-empty fragment of the provider's refusal text."""
        if isinstance(delta, str) and delta:
            if not self.started:
                self.announce()
            self.refusal = (self.refusal or "") + delta
            self.emit(refusal_delta(delta))

    def open_call(self, key: Any, call_id: str, name: str) -> _Call:
        """Register a tool call under the provider's key and announce it."""
        if not self.started:
            self.announce()
        self.close_text()
        self.close_all_reasoning()
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
        """Emit the assembled call (once) and count it among the completed calls."""
        raw = call.arguments_text()
        event = ToolCallCompleted(
            id=call.id,
            name=call.name,
            arguments=parse_arguments(raw),
            raw_arguments=raw,
            metadata=call.metadata,
        )
        call.done = True
        self.completed.append(event)
        self.emit(event)
        return event

    def set_usage(self, usage: Usage) -> None:
        """Remember the stream's usage (emitted once, before ``message_completed``)."""
        self.usage = usage

    def complete(self) -> None:
        """Close open blocks, emit the usage chunk and the one ``message_completed``.

        ``stop`` is promoted to ``tool_calls`` when the message has tool calls, and a refusal
        finishes with ``content_filter``. Calls not completed yet are completed here, in
        first-seen order, after those completed while streaming.
        """
        if self.finished:
            return
        if not self.started:
            self.announce()
        self.close_all_reasoning()
        self.close_text()
        for call in self.calls.values():
            if not call.done:
                self.complete_call(call)
        if self.usage is not None:
            self.emit(usage_chunk(self.usage))
        tool_calls = [completed.to_call() for completed in self.completed]
        finish = self.finish
        if tool_calls and finish == "stop":
            finish = "tool_calls"
        if self.refusal is not None:
            finish = "content_filter"
        message = Message(
            role="assistant",
            content="".join(self.text),
            tool_calls=tool_calls,
            reasoning=self.reasoning,
            refusal=self.refusal,
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
    for name, path in fields.items():
        if isinstance(path, tuple):
            parent = raw.get(path[0])
            value = parent.get(path[1]) if isinstance(parent, dict) else None
            used.add(path[0])
        else:
            value = raw.get(path)
            used.add(path)
        if isinstance(value, int) and not isinstance(value, bool):
            values[name] = value
    extra = {k: v for k, v in raw.items() if k not in used and v is not None}
    return Usage(**values, extra=extra)


def merge_reported(known: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``known`` updated with the values ``update`` reports: a missing or null value never erases one."""
    return {**known, **{k: v for k, v in update.items() if v is not None}}


__all__ = [
    "Emit",
    "Handler",
    "SSEEvent",
    "StreamAdapter",
    "StreamMapper",
    "StreamOptions",
    "loads",
    "merge_reported",
    "on",
    "parse_arguments",
    "usage_from",
]
