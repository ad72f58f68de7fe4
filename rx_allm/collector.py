"""Folding a stream of events into a :class:`~rx_allm.models.Response`.

``generate`` is ``stream_generate`` reduced by :class:`StreamCollector`;
``generate_sync`` is the same for code without a running event loop. The fold
never raises for a failed stream: the terminal ``on_error`` becomes
``finish_reason="error"`` with the error on ``Response.error`` and every text
and tool fragment received before it kept.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from reactivex import Observable

from rx_allm.engine import Engine
from rx_allm.errors import AdapterError, StreamError
from rx_allm.events import (
    Event,
    MessageCompleted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.loop import call_on_loop, running_loop
from rx_allm.models import FinishReason, Message, Request, Response, ToolCall, Usage
from rx_allm.runner import new_request_id, stream_generate


class StreamCollector:
    """Accumulates events; ``to_response()`` gives the Response at any point.

    Fold rules: text deltas append to the current block and ``text_completed``
    replaces that block's text (so several blocks concatenate); tool calls are
    kept in first-seen order (started puts, deltas append raw arguments,
    completed replaces); a usage ``raw_chunk`` replaces the usage;
    ``message_completed`` sets the message, a non-None finish reason and merges
    its metadata; an error sets ``finish_reason="error"``.
    """

    __slots__ = (
        "_blocks",
        "_calls",
        "_current",
        "_error",
        "_finish",
        "_message",
        "_metadata",
        "_usage",
        "request_id",
    )

    def __init__(self, request_id: str | None = None) -> None:
        self._blocks: list[str] = []
        self._current: list[str] = []
        self._calls: dict[str, ToolCall] = {}
        self._message: Message | None = None
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._error: AdapterError | StreamError | None = None
        self._metadata: dict[str, Any] = {}
        self.request_id = request_id

    def apply(self, event: Event) -> None:
        """Fold one event."""
        if isinstance(event, TextDelta):
            self._current.append(event.delta)
        elif isinstance(event, TextCompleted):
            self._blocks.append(event.text)
            self._current.clear()
        elif isinstance(event, ToolCallStarted):
            if event.id not in self._calls:
                self._calls[event.id] = ToolCall(id=event.id, name=event.name)
        elif isinstance(event, ToolCallDelta):
            call = self._calls.get(event.id) or ToolCall(id=event.id)
            raw = call.raw_arguments + event.arguments_delta
            self._calls[call.id] = call.model_copy(update={"raw_arguments": raw})
        elif isinstance(event, ToolCallCompleted):
            self._calls[event.id] = ToolCall(
                id=event.id,
                name=event.name,
                arguments=event.arguments,
                raw_arguments=event.raw_arguments,
                metadata=event.metadata,
            )
        elif isinstance(event, RawChunk):
            if event.kind == "usage" and isinstance(event.data, Usage):
                self._usage = event.data
        elif isinstance(event, MessageCompleted):
            self._message = event.message
            if event.finish_reason is not None:
                self._finish = event.finish_reason
            self._metadata.update(event.metadata)

    def fail(self, error: Exception) -> None:
        """Fold the terminal error (anything not typed is wrapped as ``StreamError("unknown")``)."""
        if not isinstance(error, (AdapterError, StreamError)):
            error = StreamError("unknown", f"stream failed: {type(error).__name__}: {error}", cause=error)
        self._error = error
        self._finish = "error"

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._blocks) + "".join(self._current)

    def to_response(self) -> Response:
        """The Response for everything folded so far."""
        message = self._message
        text = message.text if message is not None and message.text else self.text
        calls = list(self._calls.values())
        if message is None:
            message = Message(role="assistant", content=text, tool_calls=calls)
        # Validating is cheaper than ``model_construct`` here: model instances pass through as they are.
        return Response(
            message=message,
            output_text=text,
            tool_calls=calls,
            finish_reason=self._finish,
            usage=self._usage or Usage(),
            error=self._error,
            metadata=dict(self._metadata),
            request_id=self.request_id,
        )


async def collect(events: Observable[Event], collector: StreamCollector | None = None) -> Response:
    """Subscribe to ``events`` and fold them; cancelling the awaiting task disposes the subscription."""
    collector = collector or StreamCollector()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] | None = None
    finished = False

    def wake() -> None:
        if future is not None and not future.done():
            future.set_result(None)

    def done(error: Exception | None = None) -> None:
        nonlocal finished
        if error is not None:
            collector.fail(error)
        finished = True
        if future is not None:
            call_on_loop(loop, wake)

    subscription = events.subscribe(on_next=collector.apply, on_error=done, on_completed=done)
    if not finished:
        future = loop.create_future()
        if finished:  # completed on another thread in between
            wake()
        try:
            await future
        except asyncio.CancelledError:
            subscription.dispose()
            raise
    return collector.to_response()


async def generate(engine: Engine, request: Request, **options: Any) -> Response:
    """Run one generation and return its :class:`Response` (pre-flight errors raise)."""
    options.setdefault("request_id", new_request_id())
    events = stream_generate(engine, request, **options)
    return await collect(events, StreamCollector(options["request_id"]))


def generate_sync(engine: Engine, request: Request, **options: Any) -> Response:
    """:func:`generate` for synchronous code (HTTP runs on the library's background loop)."""
    if running_loop() is not None:
        raise RuntimeError("generate_sync() would block the running event loop; use `await generate(...)`")
    options.setdefault("request_id", new_request_id())
    collector = StreamCollector(options["request_id"])
    finished = threading.Event()

    def fail(error: Exception) -> None:
        collector.fail(error)
        finished.set()

    subscription = stream_generate(engine, request, **options).subscribe(
        on_next=collector.apply, on_error=fail, on_completed=finished.set
    )
    try:
        while not finished.wait(0.1):
            pass
    except BaseException:
        subscription.dispose()
        raise
    return collector.to_response()
