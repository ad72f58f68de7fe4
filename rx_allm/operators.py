"""Rx operators for consumers that render a stream, such as a UI.

``coalesce_text(window)`` batches text deltas so a view repaints at most once per
window, without losing, reordering or holding back text longer than the window::

    events.pipe(allm.coalesce_text(0.05)).subscribe(on_next=render)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rx_allm._loop import default_scheduler
from rx_allm.events import Event, TextDelta


def coalesce_text(
    window: float, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[Event]], Observable[Event]]:
    """Merge consecutive ``text_delta`` events into one ``TextDelta`` per ``window`` seconds.

    The first delta of a batch opens the window; the deltas that arrive before it
    closes are emitted, concatenated, when it closes (a batch of one is emitted as
    is). Any other event, a delta with another ``id``, the completion and an error
    first flush the pending text, so order is kept and text received before an
    error is delivered before it. Every other event passes through unchanged.
    Disposal drops the pending text and cancels the timer. The timer runs on
    ``scheduler``, else the one given to ``subscribe``, else the loop delivering
    the events (see :func:`rx_allm._loop.default_scheduler`).
    """
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
        raise ValueError(f"window must be a positive number of seconds, got {window!r}")

    def operator(source: Observable[Event]) -> Observable[Event]:
        def subscribe(
            observer: abc.ObserverBase[Event], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            batch = _TextBatch(observer, float(window), scheduler or subscribe_scheduler)
            upstream = source.subscribe(
                on_next=batch.on_next,
                on_error=batch.on_error,
                on_completed=batch.on_completed,
                scheduler=subscribe_scheduler,
            )
            batch.upstream = upstream
            return CompositeDisposable(Disposable(batch.dispose), upstream)

        return Observable(subscribe)

    return operator


class _TextBatch:
    """One subscription's pending text; notifications are serialized by a lock."""

    def __init__(
        self, observer: abc.ObserverBase[Event], window: float, scheduler: abc.SchedulerBase | None
    ) -> None:
        self.observer = observer
        self.window = window
        self.scheduler = scheduler
        self.lock = threading.RLock()
        self.first: TextDelta | None = None
        self.parts: list[str] = []
        self.opened = 0  # batches opened so far: tells a window's timer from a stale one
        self.timer = SerialDisposable()
        self.upstream: abc.DisposableBase | None = None
        self.stopped = False

    def on_next(self, event: Event) -> None:
        with self.lock:
            if self.stopped:
                return
            if isinstance(event, TextDelta):
                if self.first is not None and event.id != self.first.id:
                    self._flush()
                if self.first is None:
                    self.first = event
                    if self.scheduler is None:  # chosen on the delivering thread, lazily
                        self.scheduler = default_scheduler()
                    self.opened += 1
                    self.timer.disposable = self.scheduler.schedule_relative(
                        self.window, self._close, self.opened
                    )
                self.parts.append(event.delta)
                return
            self._flush()
            self.observer.on_next(event)

    def on_error(self, error: Exception) -> None:
        with self.lock:
            if not self.stopped:
                self._flush()
                self.stopped = True
                self.observer.on_error(error)

    def on_completed(self) -> None:
        with self.lock:
            if not self.stopped:
                self._flush()
                self.stopped = True
                self.observer.on_completed()

    def dispose(self) -> None:
        self.stopped = True
        self.timer.dispose()

    def _close(self, scheduler: abc.SchedulerBase, batch: int | None = None) -> None:
        """The window of the ``batch``-th batch elapsed: emit it; a failing subscriber stops the stream."""
        with self.lock:
            if self.stopped or self.first is None or batch != self.opened:  # it lost a race with a flush
                return
            try:
                self._flush()
            except Exception:
                self.dispose()
                if self.upstream is not None:
                    self.upstream.dispose()
                raise

    def _flush(self) -> None:
        first, parts = self.first, self.parts
        if first is None:
            return
        self.first, self.parts = None, []
        self.timer.disposable = Disposable()  # cancels the pending window
        self.observer.on_next(first if len(parts) == 1 else TextDelta(id=first.id, delta="".join(parts)))


__all__ = ["coalesce_text"]
