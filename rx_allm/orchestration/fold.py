"""Folding chat events into a :class:`ChatResult`: ``ChatCollector``, ``chat`` and ``chat_sync``.

``chat()`` never raises for a failed step: the terminal ``on_error`` becomes
``halted_reason="error"`` with the error, the completed steps and the failed step's
partial response kept. A fold stopped before ``chat_completed`` reports ``cancelled``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence
from typing import Any

import pydantic
from pydantic import BaseModel
from reactivex import Observable

from rx_allm._loop import background_loop, call_on_loop, refuse_blocking
from rx_allm._subscribe import subscribe_now
from rx_allm.collector import StreamCollector
from rx_allm.conversation import ChatResult, StepResult, Thread, sum_usage
from rx_allm.engine import Engine
from rx_allm.errors import RxAllmError, StreamError
from rx_allm.events import RESERVED_TYPES as ORCHESTRATION_TYPES
from rx_allm.events import ChatCompleted, Event, StepCompleted
from rx_allm.models import Message, Response
from rx_allm.orchestration.loop import stream_chat
from rx_allm.schema import output_type
from rx_allm.structured import output_error


class ChatCollector:
    """Accumulates chat events; :meth:`to_result` gives the ChatResult at any point.

    A completed step is taken whole from its ``step_completed``; the events of the step in
    progress are kept as they are and folded (by a ``StreamCollector``) only when the
    chat ends before that step does.
    """

    __slots__ = ("_completed", "_error", "_pending", "_result", "thread")

    def __init__(self, thread: Thread | None = None) -> None:
        self.thread = thread or Thread()
        self._completed: list[StepCompleted] = []  # made StepResults only when a result needs them
        self._pending: list[Event] = []
        self._result: ChatResult | None = None
        self._error: RxAllmError | None = None

    def apply(self, event: Event) -> None:
        """Fold one event."""
        kind = event.type
        if kind == "step_completed":
            assert isinstance(event, StepCompleted)
            self._pending.clear()
            self.thread = event.thread
            self._completed.append(event)
        elif kind == "chat_completed":
            assert isinstance(event, ChatCompleted)
            self._result = event.result
        elif kind not in ORCHESTRATION_TYPES:
            self._pending.append(event)

    def fail(self, error: Exception) -> None:
        """Fold the terminal error (an untyped one is wrapped as ``StreamError("unknown")``)."""
        if not isinstance(error, RxAllmError):
            error = StreamError("unknown", f"chat failed: {type(error).__name__}: {error}", cause=error)
        self._error = error

    @property
    def steps(self) -> list[StepResult]:
        """The completed steps folded so far."""
        return [
            StepResult(index=e.index, response=e.response, tool_outcomes=e.tool_outcomes, thread=e.thread)
            for e in self._completed
        ]

    @property
    def finished(self) -> bool:
        """True once ``chat_completed`` or an error was folded."""
        return self._result is not None or self._error is not None

    def to_result(self) -> ChatResult:
        """The ChatResult of everything folded so far (``cancelled`` when the chat did not end)."""
        if self._result is not None:
            return self._result
        steps = self.steps
        partial = self._partial_response()
        response = partial or (steps[-1].response if steps else StreamCollector().to_response())
        usages = [s.response.usage for s in steps] + ([partial.usage] if partial else [])
        return ChatResult(
            thread=self.thread,
            response=response,
            steps=steps,
            halted_reason="error" if self._error is not None else "cancelled",
            usage=sum_usage(usages),
            output_text=response.output_text,
            error=self._error,
        )

    def _partial_response(self) -> Response | None:
        if not self._pending and self._error is None:
            return None
        step = StreamCollector()
        for event in self._pending:
            step.apply(event)
        if self._error is not None:
            step.fail(self._error)
        return step.to_response() if self._pending or not self._completed else None


async def chat(
    engine: Engine, messages: Thread | Sequence[Message] | Message | str, **options: Any
) -> ChatResult:
    """Run a chat (see :func:`stream_chat` for the options) and return its :class:`ChatResult`.

    Pre-flight errors raise; an error during the chat is returned in ``result.error``.
    Cancelling the awaiting task disposes the chat (request and tools cancelled).
    """
    thread = Thread.of(messages)
    result = await fold_chat(stream_chat(engine, thread, **options), ChatCollector(thread))
    fmt = options.get("response_format") or engine.params.get("response_format")
    return with_output(result, output_type(fmt))


def with_output(result: ChatResult, model: type[BaseModel] | None) -> ChatResult:
    """A completed chat's final answer validated into ``model`` as ``result.response.output``.

    With ``response_format=Model``; a final text that does not validate gives
    ``ValidationError("invalid_output")`` in ``result.error`` and ``result.response.error``.
    """
    if model is None or result.error is not None or result.halted_reason != "completed":
        return result
    try:
        response = result.response.model_copy(
            update={"output": model.model_validate_json(result.response.output_text)}
        )
        return result.model_copy(update={"response": response})
    except pydantic.ValidationError as exc:
        error = output_error(exc, model.__name__)
        response = result.response.model_copy(update={"error": error})
        return result.model_copy(update={"response": response, "error": error})


def chat_sync(
    engine: Engine, messages: Thread | Sequence[Message] | Message | str, **options: Any
) -> ChatResult:
    """:func:`chat` for synchronous code: the chat runs on the library's background loop."""
    refuse_blocking("chat_sync()")
    future = asyncio.run_coroutine_threadsafe(chat(engine, messages, **options), background_loop())
    try:
        while True:
            try:
                return future.result(timeout=0.1)  # short waits keep Ctrl-C responsive
            except concurrent.futures.TimeoutError:
                continue
    except BaseException:
        future.cancel()  # cancels the awaiting task, which disposes the chat
        raise


async def fold_chat(events: Observable[Event], folder: ChatCollector) -> ChatResult:
    """Subscribe to chat ``events`` and fold them; cancelling the awaiting task disposes the chat."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    def settle(error: Exception | None = None) -> None:
        if error is not None:
            folder.fail(error)
        call_on_loop(loop, wake)

    subscription = subscribe_now(events, folder.apply, settle, settle)
    try:
        await done
    except asyncio.CancelledError:
        subscription.dispose()
        raise
    return folder.to_result()


__all__ = ["ChatCollector", "chat", "chat_sync", "fold_chat"]
