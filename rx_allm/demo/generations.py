"""Running generations shared by their viewers: one upstream request, any number of tabs.

A :class:`Generation` multicasts one cold ``stream_generate`` Observable through
``ops.replay()`` (a ``ConnectableObservable`` over a ``ReplaySubject``): a tab that
arrives late first receives every event so far, then follows live. The connection is
counted by hand instead of with ``ops.ref_count()``, because ``ref_count`` connects
again when a subscriber arrives after the count fell to zero, which would send the
POST a second time. Here:

* the first viewer connects (the one POST); later viewers only attach;
* when the last viewer leaves a running generation (after ``linger`` seconds without a
  viewer coming back, when given: a browser refresh reattaches in time), or someone
  presses Stop, the upstream subscription is disposed (the provider request is
  cancelled) and the generation ends with ``StreamError("cancelled")``;
* an ended generation is never connected again: a later viewer gets its replay.

Everything runs on the server's event loop; nothing here is thread-safe or needs to be.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from typing import Literal

import reactivex
from reactivex import ConnectableObservable, Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from rx_allm.engine import Engine
from rx_allm.errors import StreamError
from rx_allm.events import Event
from rx_allm.models import request, user
from rx_allm.runner import stream_generate

State = Literal["pending", "running", "completed", "failed", "cancelled"]


class Generation:
    """One generation: a replayed multicast of its events, connected once."""

    def __init__(
        self, generation_id: str, prompt: str, events: Observable[Event], *, linger: float = 0.0
    ) -> None:
        self.id = generation_id
        self.prompt = prompt
        self.state: State = "pending"
        self.viewers = 0
        self.linger = linger
        self._connection: abc.DisposableBase | None = None
        self._lingering: asyncio.TimerHandle | None = None
        tracked = events.pipe(ops.do_action(on_error=self._failed, on_completed=self._completed))
        self._shared: ConnectableObservable[Event] = ops.replay()(tracked)

    @property
    def running(self) -> bool:
        """Connected and not ended."""
        return self.state == "running"

    def watch(self, after: int = 0) -> Observable[Event]:
        """A viewer: the events so far (from index ``after``), then live; disposing it leaves."""

        def subscribe(
            observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            subscription = self._shared.pipe(ops.skip(after)).subscribe(observer)
            self.viewers += 1
            self._stay()
            if self.state == "pending":
                self.state = "running"
                self._connection = self._shared.connect()
            return Disposable(lambda: self._leave(subscription))

        return reactivex.create(subscribe)

    def stop(self, why: str = "stopped") -> None:
        """Cancel the upstream request (if it runs) and end every viewer with ``cancelled``."""
        if self.state not in ("pending", "running"):
            return
        self.state = "cancelled"
        self._stay()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.dispose()
        self._shared.subject.on_error(StreamError("cancelled", f"generation {self.id}: {why}"))

    def _leave(self, subscription: abc.DisposableBase) -> None:
        subscription.dispose()
        self.viewers -= 1
        if self.viewers == 0 and self.running:
            if self.linger > 0:
                loop = asyncio.get_running_loop()
                self._lingering = loop.call_later(self.linger, self._stop_if_unwatched)
            else:
                self.stop("every viewer left")

    def _stop_if_unwatched(self) -> None:
        self._lingering = None
        if self.viewers == 0:
            self.stop(f"no viewer came back within {self.linger:g} s")

    def _stay(self) -> None:
        lingering, self._lingering = self._lingering, None
        if lingering is not None:
            lingering.cancel()

    def _completed(self) -> None:
        self.state = "completed"

    def _failed(self, error: Exception) -> None:
        self.state = "failed"


class Generations:
    """The registry of generations by id; keeps at most ``keep`` that are not running."""

    def __init__(self, engine: Engine, keep: int = 100) -> None:
        self.engine = engine
        self.keep = keep
        self._by_id: OrderedDict[str, Generation] = OrderedDict()

    def create(self, prompt: str) -> Generation:
        """A new pending generation for ``prompt`` (pre-flight errors of the engine raise here)."""
        events = stream_generate(self.engine, request([user(prompt)]))
        generation = Generation(secrets.token_urlsafe(9), prompt, events)
        self._by_id[generation.id] = generation
        self._prune()
        return generation

    def get(self, generation_id: str) -> Generation | None:
        """The generation with this id, if it is still kept."""
        return self._by_id.get(generation_id)

    def stop_all(self) -> None:
        """Stop every generation (server shutdown)."""
        for generation in list(self._by_id.values()):
            generation.stop("server shutting down")

    def _prune(self) -> None:
        idle = [g.id for g in self._by_id.values() if not g.running]
        for generation_id in idle[: max(0, len(self._by_id) - self.keep)]:
            del self._by_id[generation_id]


__all__ = ["Generation", "Generations", "State"]
