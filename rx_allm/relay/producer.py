"""The producer side shared by every relay: run a source once, number and encode its events.

A :class:`Producer` subscribes the source, turns each event into a :class:`Record`
(position, event, JSON) and hands it to the relay's ``write`` callback, then writes
exactly one terminal record: completed, the source's typed error (an untyped exception
becomes ``StreamError("unknown")``), ``StreamError("malformed_event")`` for an event that
cannot be serialised, or the error given to :meth:`Producer.stop` (``cancelled``).
Nothing is written after the terminal; stopping disposes the source subscription,
which cancels the provider request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from rx_allm.errors import RxAllmError
from rx_allm.events import Event
from rx_allm.relay.entry import encode_event, encode_terminal
from rx_allm.relay.failures import typed, unserialisable


class Record(NamedTuple):
    """One log entry as written: an event, or the terminal (``end`` set, ``error`` if it failed)."""

    position: int
    event: Event | None
    data: str
    end: bool = False
    error: RxAllmError | None = None


class Producer:
    """Runs one generation's source and writes its records through ``write``."""

    def __init__(self, generation_id: str, source: Observable[Any], write: Callable[[Record], None]) -> None:
        self.generation_id = generation_id
        self._source = source
        self._write = write
        self._lock = threading.RLock()
        self._subscription = SingleAssignmentDisposable()
        self.position = 0
        self.ended = False

    def run(self, scheduler: abc.SchedulerBase | None = None) -> None:
        """Subscribe the source (once)."""
        self._subscription.disposable = self._source.subscribe(
            on_next=self._on_next,
            on_error=self._on_error,
            on_completed=self._on_completed,
            scheduler=scheduler,
        )

    def stop(self, error: RxAllmError) -> bool:
        """Dispose the source and end the log with ``error``; False if it had already ended."""
        return self._end(error)

    def _on_next(self, event: Any) -> None:
        with self._lock:
            if self.ended:
                return
            try:
                data = encode_event(event)
            except Exception as problem:  # pydantic serialisation errors, non-events
                self._end(unserialisable(self.generation_id, self.position + 1, problem))
                return
            self.position += 1
            self._write(Record(self.position, event, data))

    def _on_error(self, error: Exception) -> None:
        self._end(typed(error))

    def _on_completed(self) -> None:
        self._end(None)

    def _end(self, error: RxAllmError | None) -> bool:
        with self._lock:
            if self.ended:
                return False
            self.ended = True
            self.position += 1
            terminal = Record(self.position, None, encode_terminal(error), end=True, error=error)
        self._subscription.dispose()
        self._write(terminal)
        return True
