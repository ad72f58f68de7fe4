"""Iterator bridges: ``async for`` (web frameworks, async scripts) and plain ``for`` (sync code).

``iterate_sync(events)`` is the sync form, the habit of the official SDKs' streams:
``for event in allm.iterate_sync(events)`` subscribes at the first step, blocks between
events, raises a terminal ``on_error``, and ``break`` (closing the generator) disposes the
subscription, which cancels the request. It refuses to run on a thread that runs an event
loop (it would block it).

``iterate(events)`` subscribes on the first ``__anext__``. ``aclose()``, leaving an
``async with`` block, or dropping the iterator (``break`` out of ``async for``
releases the last reference) disposes the subscription, which cancels the
provider request. A terminal ``on_error`` is raised from ``__anext__``.
Events are buffered without bound between the subscription and the consumer.
"""

from __future__ import annotations

import asyncio
import queue
import weakref
from collections import deque
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc

from rx_allm._loop import call_on_loop, refuse_blocking

T = TypeVar("T")


class EventStream(Generic[T]):
    """Async iterator over an Observable; disposal follows the iterator's life."""

    def __init__(self, events: Observable[T]) -> None:
        self._events = events
        self._items: deque[T] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._subscription: abc.DisposableBase | None = None
        self._error: Exception | None = None
        self._ended = False
        self._started = False

    def __aiter__(self) -> EventStream[T]:
        return self

    async def __anext__(self) -> T:
        if not self._started:
            self._started = True
            self._start()
        while not self._items:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._ended:
                raise StopAsyncIteration
            assert self._loop is not None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            except asyncio.CancelledError:
                self.close()
                raise
        return self._items.popleft()

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # The callbacks hold the iterator weakly: the live source (a pending timer, an
        # HTTP task) must not keep it alive, or dropping it (``break``) would not dispose.
        ref = weakref.ref(self)

        def deliver(item: T | None, error: Exception | None, end: bool) -> None:
            stream = ref()
            if stream is not None:
                stream._deliver(item, error, end)

        self._subscription = self._events.subscribe(
            on_next=lambda item: deliver(item, None, False),
            on_error=lambda error: deliver(None, error, True),
            on_completed=lambda: deliver(None, None, True),
        )

    def _deliver(self, item: T | None, error: Exception | None, end: bool) -> None:
        loop = self._loop
        assert loop is not None

        def apply() -> None:
            if self._ended and not end:
                return
            if end:
                self._ended = True
                self._error = error
            else:
                self._items.append(item)  # type: ignore[arg-type]
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        call_on_loop(loop, apply)

    def close(self) -> None:
        """Dispose the subscription now (synchronous; safe to call twice)."""
        self._ended = True
        self._items.clear()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.dispose()

    async def aclose(self) -> None:
        """Dispose the subscription (cancels the provider request)."""
        self.close()

    async def __aenter__(self) -> EventStream[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        subscription = self.__dict__.get("_subscription")
        if subscription is not None:
            subscription.dispose()


def iterate(events: Observable[T]) -> EventStream[T]:
    """Iterate an Observable with ``async for``; ``break`` / ``aclose()`` disposes it."""
    return EventStream(events)


__all__ = ["EventStream", "iterate", "iterate_sync"]


def iterate_sync(events: Observable[T]) -> Iterator[T]:
    """Iterate an Observable with a plain ``for``; ``break`` disposes it, a terminal error is raised."""
    refuse_blocking("iterate_sync()")
    return _blocking_items(events)


def _blocking_items(events: Observable[T]) -> Iterator[T]:
    items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    subscription = events.subscribe(
        on_next=lambda item: items.put(("next", item)),
        on_error=lambda error: items.put(("error", error)),
        on_completed=lambda: items.put(("end", None)),
    )
    try:
        while True:
            kind, value = items.get()
            if kind == "next":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        subscription.dispose()
