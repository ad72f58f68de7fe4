"""A recorder of one subscription in real time: every notification, in order, and how it ended.

:func:`record` subscribes from async code and waits (bounded) for the terminal notification;
:func:`record_sync` does the same from synchronous code (streams then run on the library's
background loop). Anything delivered after the terminal notification lands in
:attr:`Recording.late`, so a test can assert that nothing was. For virtual time, use
:func:`~rx_allm.testing.marbles.record_events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from reactivex import Observable

from rx_allm._loop import call_on_loop, refuse_blocking, running_loop
from rx_allm.events import TextDelta


class Recording:
    """One subscription's notifications: ``events`` (on_next values) and how it ended.

    Pass its methods as the observer (``source.subscribe(rec.on_next, rec.on_error,
    rec.on_completed)``) from any thread; :meth:`wait` wakes on the loop that created it.
    """

    def __init__(self, label: str = "") -> None:
        self.label = label  # named in failure messages
        self.events: list[Any] = []
        self.error: BaseException | None = None
        self.completed = False
        self.late: list[Any] = []  # anything delivered after the terminal notification
        self.ended_at = 0.0  # time.monotonic() of the terminal notification
        self._loop = running_loop()
        self._changed = asyncio.Event() if self._loop is not None else None
        self._ended = threading.Event()

    @property
    def ended(self) -> bool:
        """The terminal notification arrived."""
        return self.completed or self.error is not None

    def on_next(self, event: Any) -> None:
        (self.late if self.ended else self.events).append(event)
        self._wake()

    def on_error(self, error: Exception) -> None:
        if self.ended:
            self.late.append(error)
        else:
            self.error, self.ended_at = error, time.monotonic()
        self._wake()

    def on_completed(self) -> None:
        if self.ended:
            self.late.append("on_completed")
        else:
            self.completed, self.ended_at = True, time.monotonic()
        self._wake()

    def _wake(self) -> None:
        if self.ended:
            self._ended.set()
        if self._loop is not None and self._changed is not None:
            call_on_loop(self._loop, self._changed.set)

    async def wait(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        """Wait until ``done()`` holds; raise ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
        if self._changed is None:
            raise RuntimeError("this recording was made outside an event loop: use wait_ended()")
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.label}: no {what} within {timeout:g}s; saw {self.summary()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def wait_ended(self, timeout: float) -> None:
        """Block this thread until the terminal notification; ``TimeoutError`` after ``timeout`` seconds."""
        if not self._ended.wait(timeout):
            raise TimeoutError(
                f"{self.label}: no terminal notification within {timeout:g}s; saw {self.summary()}"
            )

    def of(self, kind: type[Any]) -> list[Any]:
        """The recorded events of one type."""
        return [e for e in self.events if isinstance(e, kind)]

    def text(self) -> str:
        """The text deltas joined."""
        return "".join(e.delta for e in self.of(TextDelta))

    def summary(self) -> str:
        """A readable line: the event types, then how the stream ended and anything late."""
        kinds = [getattr(e, "type", type(e).__name__) for e in self.events]
        end = f"on_error({self.error!r})" if self.error else "on_completed" if self.completed else "no end"
        late = f", then {self.late!r}" if self.late else ""
        return f"[{', '.join(kinds)}] {end}{late}"


async def record(source: Observable[Any], timeout: float = 5.0, label: str = "") -> Recording:
    """Subscribe to ``source`` on the running loop and wait up to ``timeout`` seconds for its end.

    The subscription is disposed before returning (also on timeout, which raises ``TimeoutError``).
    """
    rec = Recording(label)
    subscription = source.subscribe(on_next=rec.on_next, on_error=rec.on_error, on_completed=rec.on_completed)
    try:
        await rec.wait(lambda: rec.ended, "terminal notification", timeout)
    finally:
        subscription.dispose()
    return rec


def record_sync(source: Observable[Any], timeout: float = 20.0, label: str = "") -> Recording:
    """:func:`record` for synchronous code: block this thread until the end (bounded).

    Refuses with :class:`~rx_allm.errors.BlockingCallError` on a thread that runs an event loop.
    """
    refuse_blocking("record_sync()")
    rec = Recording(label)
    subscription = source.subscribe(on_next=rec.on_next, on_error=rec.on_error, on_completed=rec.on_completed)
    try:
        rec.wait_ended(timeout)
    finally:
        subscription.dispose()
    return rec


__all__ = ["Recording", "record", "record_sync"]
