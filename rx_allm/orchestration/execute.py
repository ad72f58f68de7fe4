"""Running tool calls: argument checks, where a tool runs, and what its outcome is.

Two runners decide *where* work happens. :class:`LoopRunner` (real time): async tools run
as tasks on the chat's event loop (cancelled on disposal, so they see ``CancelledError``),
sync tools in a worker thread (a result that arrives after disposal or a timeout is
discarded); every completion comes back on the loop. :class:`VirtualRunner` (a
``VirtualTimeScheduler`` such as ``TestScheduler``): tools run inline in scheduled
actions, so a chat plays in virtual time and marble diagrams describe it. An async tool is
driven inline too, whether or not an event loop runs in the thread: one that awaits real
I/O (a future, a sleep, a connection) cannot finish in virtual time, so it is closed and
its outcome is a tool error saying so, never a hang.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import pydantic
import pydantic_core
from reactivex.abc import SchedulerBase

from rx_allm._loop import running_loop
from rx_allm._redact import redact
from rx_allm.conversation import ToolOutcome
from rx_allm.errors import ValidationError
from rx_allm.models import ToolCall
from rx_allm.orchestration.tools import AskUser, FunctionTool, Halt, Toolbox

#: A finished tool run: ``("value", result)``, ``("raised", exception)`` or ``("timeout", seconds)``.
Finished = tuple[str, Any]
Cancel = Callable[[], None]
_PLAIN = frozenset({str, int, float, bool, type(None)})
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="rx_allm-tool")


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One call to run: ``tool(**kwargs)`` within ``timeout``; ``done`` gets how it finished."""

    tool: FunctionTool
    kwargs: dict[str, Any]
    timeout: float | None
    done: Callable[[Finished], None]


class Runner(Protocol):
    """Where the chat's continuations and its tools run (``start`` is called on that context)."""

    def defer(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` soon, on the chat's context (never synchronously)."""

    def soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` now when already on the chat's context, else as :meth:`defer` does."""

    def start(self, run: ToolRun) -> Cancel:
        """Start ``run``; its ``done`` is called on the chat's context. Returns the cancel function."""


class VirtualRunner:
    """Inline runs in scheduled actions of a virtual-time scheduler (no timeouts)."""

    def __init__(self, scheduler: SchedulerBase) -> None:
        self.scheduler = scheduler

    def defer(self, fn: Callable[[], object]) -> None:
        def action(_scheduler: SchedulerBase, _state: object) -> None:
            fn()

        self.scheduler.schedule(action)

    def soon(self, fn: Callable[[], object]) -> None:
        fn()  # a virtual-time scheduler runs everything on one thread

    def start(self, run: ToolRun) -> Cancel:
        disposable = self.scheduler.schedule(lambda _s, _t: run.done(_call_inline(run)))
        return disposable.dispose


def _call_inline(run: ToolRun) -> Finished:
    try:
        if run.tool.is_async:
            return ("value", _run_inline(run.tool.name, run.tool.fn(**run.kwargs)))
        return ("value", run.tool.fn(**run.kwargs))
    except Exception as exc:
        return ("raised", exc)


def _run_inline(name: str, coro: Coroutine[Any, Any, Any]) -> Any:
    """``coro``'s value (or exception) when it ends without waiting for the event loop.

    It runs with an event loop that never runs as its running loop (restored afterwards,
    so a loop running in the thread is left alone): an await of real I/O then suspends the
    coroutine, whether or not a loop runs here, and it is closed. Raises ``RuntimeError``.
    """
    idle = asyncio.new_event_loop()
    outer = asyncio._get_running_loop()
    asyncio._set_running_loop(idle)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    else:
        with contextlib.suppress(RuntimeError):  # a ``finally`` of the tool that awaits again
            coro.close()
    finally:
        asyncio._set_running_loop(outer)
        idle.close()
    raise RuntimeError(
        f"async tool {name} awaited real I/O under virtual time, where nothing it waits for"
        " can happen: make it a sync tool, or run the chat on the real event loop"
    )


class LoopRunner:
    """Async tools as tasks on ``loop``, sync tools in worker threads; completions on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def defer(self, fn: Callable[[], object]) -> None:
        loop = self.loop
        if running_loop() is loop:
            loop.call_soon(fn)  # no wake-up write: this thread runs the loop
        elif not loop.is_closed():
            loop.call_soon_threadsafe(fn)

    def soon(self, fn: Callable[[], object]) -> None:
        if running_loop() is self.loop:
            fn()
        else:
            self.defer(fn)

    def start(self, run: ToolRun) -> Cancel:
        return self._start_task(run) if run.tool.is_async else self._start_thread(run)

    def _start_task(self, run: ToolRun) -> Cancel:
        loop = self.loop
        task: asyncio.Task[Any] = loop.create_task(run.tool.fn(**run.kwargs))
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()  # the tool sees CancelledError, as on disposal

        timer = loop.call_later(run.timeout, expire) if run.timeout is not None else None

        def finished(task: asyncio.Task[Any]) -> None:
            if timer is not None:
                timer.cancel()
            if task.cancelled():
                if expired:
                    run.done(("timeout", run.timeout))
                return
            error = task.exception()
            run.done(("raised", error) if error is not None else ("value", task.result()))

        task.add_done_callback(finished)
        return lambda: self.defer(task.cancel)

    def _start_thread(self, run: ToolRun) -> Cancel:
        settled = False
        timer: asyncio.TimerHandle | None = None

        def settle(finished: Finished) -> None:
            nonlocal settled
            if not settled:
                settled = True
                if timer is not None:
                    timer.cancel()
                run.done(finished)

        def completed(future: concurrent.futures.Future[Any]) -> None:
            if future.cancelled():
                return
            error = future.exception()
            outcome: Finished = ("raised", error) if error is not None else ("value", future.result())
            self.defer(lambda: settle(outcome))

        if run.timeout is not None:
            timer = self.loop.call_later(run.timeout, settle, ("timeout", run.timeout))
        future = _POOL.submit(run.tool.fn, **run.kwargs)
        future.add_done_callback(completed)

        def cancel() -> None:
            nonlocal settled
            settled = True  # a running thread cannot be stopped: its result is discarded
            future.cancel()
            if timer is not None:
                self.defer(timer.cancel)

        return cancel


# -- outcomes -------------------------------------------------------------------------------
def check_call(call: ToolCall, toolbox: Toolbox) -> tuple[FunctionTool, dict[str, Any]] | ToolOutcome:
    """The tool and its validated arguments, or the outcome decided without running anything."""
    entry = toolbox.get(call.name)
    if entry is None:
        known = ", ".join(sorted(toolbox.by_name)) or "none"
        return error_outcome(call, "unknown_tool", f"unknown tool {call.name!r} (available: {known})")
    if not isinstance(entry, FunctionTool) or entry.manual:
        return ToolOutcome(call=call, kind="pending")
    try:
        return entry, entry.validate(call.arguments)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        return error_outcome(call, "invalid_arguments", f"invalid arguments for {call.name}: {problems}")


def error_outcome(call: ToolCall, reason: str, message: str) -> ToolOutcome:
    """An error result fed back to the model (``reason``: unknown_tool, invalid_arguments, ...).

    The message is redacted like every error message: a key a tool's exception mentions
    never reaches the model, the events or a log.
    """
    result = {"error": reason, "message": redact(message)}
    return ToolOutcome(call=call, kind="error", result=result, reason=reason, content=json.dumps(result))


def outcome_of(call: ToolCall, finished: Finished) -> ToolOutcome:
    """The outcome of a finished run (raises :class:`ValidationError` for a non-JSON result)."""
    how, payload = finished
    if how == "timeout":
        return error_outcome(call, "tool_timeout", f"tool {call.name} did not finish within {payload} s")
    if how == "raised":
        if isinstance(payload, AskUser):
            return ToolOutcome(
                call=call, kind="ask_user", question=payload.question, opts=_jsonable(call, payload.opts)
            )
        return error_outcome(call, "tool_exception", f"{type(payload).__name__}: {payload}")
    if isinstance(payload, Halt):
        result = _jsonable(call, payload.result)
        return ToolOutcome(
            call=call, kind="halt", result=result, reason=payload.reason, content=encode(result)
        )
    result = _jsonable(call, payload)
    return ToolOutcome(call=call, kind="result", result=result, content=encode(result))


def submitted_outcome(call: ToolCall, value: Any) -> ToolOutcome:
    """The outcome of a result the caller supplied for a pending call."""
    result = _jsonable(call, value)
    return ToolOutcome(call=call, kind="result", result=result, content=encode(result))


def encode(result: Any) -> str:
    """The tool message content: a string as it is, anything else as JSON text."""
    return result if isinstance(result, str) else _JSON.encode(result)


#: ``json.dumps(..., ensure_ascii=False)`` builds an encoder per call; this one is built once.
_JSON = json.JSONEncoder(ensure_ascii=False)


def _jsonable(call: ToolCall, value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    try:
        return pydantic_core.to_jsonable_python(value)
    except pydantic_core.PydanticSerializationError:
        raise ValidationError(
            "invalid_tool",
            f"tool {call.name!r} returned a {type(value).__name__}, which is not JSON-serialisable",
            errors=[(f"tools.{call.name}.result", "not_json_serializable")],
        ) from None


__all__ = [
    "Finished",
    "LoopRunner",
    "Runner",
    "ToolRun",
    "VirtualRunner",
    "check_call",
    "encode",
    "error_outcome",
    "outcome_of",
    "submitted_outcome",
]
