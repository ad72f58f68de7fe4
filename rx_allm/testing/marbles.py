"""Marble helpers: test pipelines built on rx_allm in virtual time with the Fake adapter.

* :func:`script_from_marbles` turns a marble diagram into a Fake script with delays
  (``"-a--b-|"`` → text ``a`` at 1 s, ``b`` at 4 s, finish at 6 s);
* :func:`fake_engine` builds an engine replaying a script;
* :func:`record_events` subscribes on a :class:`~reactivex.testing.TestScheduler` and
  returns ``(time, notification)`` pairs (:class:`Recorded`);
* :func:`timeline` reads them as ``(time, label)`` pairs such as ``(1.0, "text_delta:Hel")``
  (chat events too: ``"tool_execution_completed:add"`` — ``add!`` for an error result —,
  ``"tool_result_encoded:3"``, ``"step_completed:0"``, ``"chat_completed:completed"``);
  :func:`assert_completed` and :func:`assert_error` check how the stream ended (errors by
  ``isinstance`` and reason: reactivex notifications compare by their printed form only);
* :class:`CleanupCounter` records how and when Fake subscriptions ended.

Times are seconds of the scheduler's clock; a diagram character lasts ``timespan`` seconds,
following :func:`reactivex.observable.marbles.parse`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from reactivex import Notification, Observable
from reactivex.disposable import SerialDisposable
from reactivex.notification import OnError, OnNext
from reactivex.observable.marbles import parse
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.testing import TestScheduler

from rx_allm.engine import Engine
from rx_allm.errors import RxAllmError
from rx_allm.events import (
    AskUserRequested,
    ChatCompleted,
    MessageCompleted,
    RawChunk,
    StepCompleted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionCompleted,
    ToolExecutionStarted,
    ToolHalt,
    ToolResultEncoded,
)

__all__ = [
    "CleanupCounter",
    "Recorded",
    "assert_completed",
    "assert_error",
    "fake_engine",
    "record_events",
    "script_from_marbles",
    "timeline",
]

E = TypeVar("E", bound=BaseException)
_DETAIL: Mapping[type[Any], str | Callable[[Any], object]] = {
    TextDelta: "delta",
    TextCompleted: "text",
    ToolCallStarted: "name",
    ToolCallDelta: "arguments_delta",
    ToolCallCompleted: "name",
    RawChunk: "kind",
    MessageCompleted: "finish_reason",
    ToolExecutionStarted: "name",
    ToolExecutionCompleted: lambda e: f"{e.name}{'!' if e.is_error else ''}",
    ToolResultEncoded: "content",
    AskUserRequested: "question",
    ToolHalt: "reason",
    StepCompleted: "index",
    ChatCompleted: lambda e: e.result.halted_reason,
}


class CleanupCounter:
    """A Fake ``cleanup_observer``: records ``(how, time)`` for each subscription's end.

    ``how`` is ``"completed"``, ``"error"`` or ``"disposed"``; ``clock`` gives the time
    (``time.monotonic`` by default; ``lambda: scheduler.clock`` for virtual time).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.ends: list[tuple[str, float]] = []

    def __call__(self, how: str) -> None:
        self.ends.append((how, self.clock()))

    def count(self, how: str | None = None) -> int:
        """How many subscriptions ended (only those that ended ``how``)."""
        return sum(1 for end, _ in self.ends if how is None or end == how)


def fake_engine(
    script: Sequence[Any], *, cleanup: Callable[[str], Any] | None = None, **adapter_opts: Any
) -> Engine:
    """An engine whose Fake adapter replays ``script`` (``cleanup`` becomes its ``cleanup_observer``)."""
    opts: dict[str, Any] = {"script": list(script), **adapter_opts}
    if cleanup is not None:
        opts["cleanup_observer"] = cleanup
    return Engine(adapter="fake", adapter_opts=opts)


def script_from_marbles(
    marbles: str,
    values: Mapping[str, Any] | None = None,
    *,
    timespan: float = 1.0,
    error: str | tuple[Any, ...] = "provider_unavailable",
    finish: str = "stop",
) -> list[tuple[Any, ...]]:
    """A Fake script playing ``marbles``: ``-`` waits ``timespan`` seconds, ``|`` finishes, ``#`` fails.

    An element is looked up in ``values`` (else taken as written): a string becomes a text
    delta, a tuple is used as the script entry (``("tool_call", {...})``, ``("usage", {...})``).
    ``#`` becomes ``("error", error)`` for a reason string, or ``error`` itself when it is an
    entry such as ``("stream_error", "truncated", {})``. The diagram must end with ``|`` or ``#``.
    """
    entries: list[tuple[Any, ...]] = []
    now = 0.0
    ended = False
    lookup: dict[str | float, Any] = {key: value for key, value in (values or {}).items()}
    for relative, notification in parse(marbles, timespan=timespan, lookup=lookup, raise_stopped=True):
        at = float(relative)  # type: ignore[arg-type]  # a float timespan gives float times
        if at > now:
            entries.append(("delay", at - now))
            now = at
        if isinstance(notification, OnNext):
            entries.append(_entry(notification.value))
        elif isinstance(notification, OnError):
            entries.append(error if isinstance(error, tuple) else ("error", error))
            ended = True
        else:
            entries.append(("finish", finish))
            ended = True
    if not ended:
        raise ValueError(f"marble diagram {marbles!r} never ends: finish it with '|' or '#'")
    return entries


def _entry(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        return ("text", value)
    if isinstance(value, (tuple, list)):
        return tuple(value)
    raise ValueError(f"marble element {value!r} is neither text nor a script entry; map it in `values`")


class Recorded(NamedTuple):
    """One notification and the virtual time it arrived at."""

    time: float
    notification: Notification[Any]

    @property
    def kind(self) -> str:
        """``"N"`` (on_next), ``"E"`` (on_error) or ``"C"`` (on_completed)."""
        return self.notification.kind

    @property
    def value(self) -> Any:
        """The on_next value (an event), else None."""
        return self.notification.value if isinstance(self.notification, OnNext) else None

    @property
    def error(self) -> Exception | None:
        """The on_error exception, else None."""
        return self.notification.exception if isinstance(self.notification, OnError) else None

    @property
    def label(self) -> str:
        """A readable form: ``"text_delta:Hel"``, ``"completed"``, ``"error:AdapterError:timeout"``..."""
        if self.kind == "C":
            return "completed"
        error = self.error
        if error is not None:
            reason = f":{error.reason}" if isinstance(error, RxAllmError) else ""
            return f"error:{type(error).__name__}{reason}"
        value = self.value
        detail = _DETAIL.get(type(value))
        if detail is not None:
            shown = getattr(value, detail) if isinstance(detail, str) else detail(value)
            return f"{value.type}:{shown}"
        return str(getattr(value, "type", value))


def record_events(
    source: Observable[Any],
    scheduler: TestScheduler | None = None,
    *,
    subscribe_at: float = 0.0,
    dispose_at: float | None = None,
) -> list[Recorded]:
    """Subscribe to ``source`` at ``subscribe_at`` on ``scheduler`` and run the clock until idle.

    ``dispose_at`` disposes the subscription at that time (give it for an endless source).
    The scheduler is passed to the subscription, so Fake delays and timed operators
    (``timeout``, ``debounce``...) run in virtual time.
    """
    scheduler = scheduler or TestScheduler()
    observer = scheduler.create_observer()
    subscription = SerialDisposable()

    def subscribe(*_: Any) -> None:
        subscription.disposable = source.subscribe(observer, scheduler=scheduler)

    scheduler.schedule_absolute(subscribe_at, subscribe)
    if dispose_at is not None:
        scheduler.schedule_absolute(dispose_at, lambda *_: subscription.dispose())
    VirtualTimeScheduler.start(scheduler)  # TestScheduler.start() would add its own 100/200/1000 actions
    return [Recorded(float(m.time), m.value) for m in observer.messages if isinstance(m.value, Notification)]


def timeline(records: Sequence[Recorded]) -> list[tuple[float, str]]:
    """``(time, label)`` per notification, to compare with ``==`` in a test.

    Times are rounded to the microsecond, so sums of fractional delays compare equal.
    """
    return [(round(record.time, 6), record.label) for record in records]


def assert_completed(records: Sequence[Recorded], *, at: float | None = None) -> None:
    """The stream ended with one ``on_completed`` (at time ``at`` when given)."""
    _terminal(records, "C", at)


def assert_error(
    records: Sequence[Recorded], error: type[E], reason: str | None = None, *, at: float | None = None
) -> E:
    """The stream ended with one ``on_error`` of type ``error`` (and ``reason``, at ``at``); returns it."""
    exception = _terminal(records, "E", at).error
    if not isinstance(exception, error):
        raise AssertionError(f"expected {error.__name__}, the stream failed with {exception!r}")
    if reason is not None and getattr(exception, "reason", None) != reason:
        raise AssertionError(f"expected reason {reason!r}, the stream failed with {exception!r}")
    return exception


def _terminal(records: Sequence[Recorded], kind: str, at: float | None) -> Recorded:
    ends = [record for record in records if record.kind != "N"]
    expected = "on_completed" if kind == "C" else "on_error"
    if len(ends) != 1 or records[-1] is not ends[0] or ends[0].kind != kind:
        raise AssertionError(f"expected one {expected} at the end, got {timeline(records)}")
    if at is not None and ends[0].time != at:
        raise AssertionError(f"expected {expected} at {at}, got it at {ends[0].time}")
    return ends[0]
