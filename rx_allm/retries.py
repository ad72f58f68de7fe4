"""Retry and fallback, only while nothing was shown: before the first content event.

``retry(...)`` subscribes to the same stream again after a retryable error;
``fallback(*sources)`` subscribes to the next source. Both act only when the failed
attempt delivered no content event (nothing, or only ``message_started``): after
text or a tool call reached the subscriber, a second generation would duplicate or
contradict it, so the error is delivered instead. A repeated ``message_started``
from a later attempt is not delivered again, so a subscriber sees one per message.
Waits run on the subscription's scheduler (virtual time under ``TestScheduler``),
else on the loop delivering the events. The library never retries on its own::

    events.pipe(allm.retry(), allm.fallback(backup_events)).subscribe(...)
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rx_allm._loop import default_scheduler
from rx_allm.errors import AdapterError, StreamError
from rx_allm.events import Event, MessageStarted

#: The error reasons ``retry`` and ``fallback`` act on by default.
RETRYABLE = ("rate_limited", "provider_unavailable", "timeout", "network_error")

#: Decides, for the n-th failure (0-based), the seconds to wait before the next attempt, or None to stop.
Decide = Callable[[Exception, int], float | None]


def retry(
    attempts: int = 3,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    jitter: float = 0.25,
    on: Iterable[str] = RETRYABLE,
    honor_retry_after: bool = True,
) -> Callable[[Observable[Event]], Observable[Event]]:
    """Subscribe again (at most ``attempts`` subscriptions in all) after an error before content.

    The error's reason must be in ``on`` (an ``AdapterError`` reason, or a
    ``StreamError`` reason; a ``StreamError("adapter_error")`` counts by its
    cause). The n-th retry waits ``base_delay * 2**n`` seconds, spread by
    ``± jitter`` (a fraction) and capped at ``max_delay``. With
    ``honor_retry_after``, a provider's ``retry_after_ms`` is waited instead,
    exactly; one longer than ``max_delay`` is not waited: the error is delivered.
    """
    _check(attempts >= 1, f"attempts must be at least 1, got {attempts!r}")
    _check(base_delay >= 0 and max_delay >= 0, "base_delay and max_delay must not be negative")
    _check(0 <= jitter <= 1, f"jitter must be a fraction between 0 and 1, got {jitter!r}")
    reasons = frozenset(on)

    def decide(error: Exception, failures: int) -> float | None:
        if failures + 1 >= attempts or _reason(error) not in reasons:
            return None
        after = error.retry_after_ms if isinstance(error, AdapterError) else None
        if honor_retry_after and after is not None:
            return after / 1000 if after / 1000 <= max_delay else None
        spread = 1 + jitter * (2 * random.random() - 1)
        return float(min(max_delay, base_delay * 2**failures * spread))

    def operator(source: Observable[Event]) -> Observable[Event]:
        return _resubscribing(lambda: _repeat(source), decide)

    return operator


def fallback(
    *sources: Observable[Event], on: Iterable[str] = RETRYABLE
) -> Callable[[Observable[Event]], Observable[Event]]:
    """On an error before content whose reason is in ``on``, subscribe to the next source, at once.

    ``events.pipe(allm.fallback(b, c))`` tries ``events``, then ``b``, then ``c``;
    the last source's error is delivered. Compose with :func:`retry` per source
    (``events.pipe(allm.retry(), allm.fallback(backup.pipe(allm.retry())))``).
    """
    reasons = frozenset(on)

    def decide(error: Exception, failures: int) -> float | None:
        return 0.0 if failures < len(sources) and _reason(error) in reasons else None

    def operator(source: Observable[Event]) -> Observable[Event]:
        return _resubscribing(lambda: iter((source, *sources)), decide)

    return operator


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _repeat(source: Observable[Event]) -> Iterator[Observable[Event]]:
    while True:
        yield source


def _reason(error: Exception) -> str | None:
    """The reason ``on`` is matched against (a wrapped adapter error counts by its own reason)."""
    if (
        isinstance(error, StreamError)
        and error.reason == "adapter_error"
        and isinstance(error.cause, AdapterError)
    ):
        return error.cause.reason
    if isinstance(error, (AdapterError, StreamError)):
        return error.reason
    return None


def _resubscribing(sources: Callable[[], Iterator[Observable[Event]]], decide: Decide) -> Observable[Event]:
    def subscribe(
        observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _Attempts(observer, sources(), decide, scheduler)
        run.start(None)
        return CompositeDisposable(Disposable(run.dispose), run.current, run.timer)

    return Observable(subscribe)


class _Attempts:
    """One subscription: the current attempt, the wait before the next one, what was delivered."""

    def __init__(
        self,
        observer: abc.ObserverBase[Event],
        sources: Iterator[Observable[Event]],
        decide: Decide,
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self.observer = observer
        self.sources = sources
        self.decide = decide
        self.scheduler = scheduler
        self.lock = threading.RLock()
        self.current = SerialDisposable()
        self.timer = SerialDisposable()
        self.failures = 0
        self.attempt = 0  # tells the current attempt's notifications from a stale one's
        self.started = False  # a message_started reached the observer
        self.content = False  # a content event of the current attempt reached the observer
        self.stopped = False

    def start(self, _scheduler: Any = None, _state: Any = None) -> None:
        with self.lock:
            if self.stopped:
                return
            self.attempt += 1
            self.content = False
            attempt, source = self.attempt, next(self.sources)
        self.current.disposable = source.subscribe(
            on_next=lambda event: self._on_next(attempt, event),
            on_error=lambda error: self._on_error(attempt, error),
            on_completed=lambda: self._on_completed(attempt),
            scheduler=self.scheduler,
        )

    def _on_next(self, attempt: int, event: Event) -> None:
        with self.lock:
            if self.stopped or attempt != self.attempt:
                return
            if isinstance(event, MessageStarted):
                if self.started:
                    return
                self.started = True
            else:
                self.content = True
        self.observer.on_next(event)

    def _on_error(self, attempt: int, error: Exception) -> None:
        with self.lock:
            if self.stopped or attempt != self.attempt:
                return
            delay = None if self.content else self.decide(error, self.failures)
            if delay is None:
                self.stopped = True
            else:
                self.failures += 1
                if self.scheduler is None:  # chosen on the delivering thread, lazily
                    self.scheduler = default_scheduler()
                scheduler = self.scheduler
        if delay is None:
            self.observer.on_error(error)
        else:
            self.timer.disposable = scheduler.schedule_relative(delay, self.start)

    def _on_completed(self, attempt: int) -> None:
        with self.lock:
            if self.stopped or attempt != self.attempt:
                return
            self.stopped = True
        self.observer.on_completed()

    def dispose(self) -> None:
        with self.lock:
            self.stopped = True
