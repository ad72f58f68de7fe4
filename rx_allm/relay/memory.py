"""``MemoryRelay``: the embedded relay, one process, every generation's log in memory.

The semantics are those of :class:`~rx_allm.relay.RedisRelay` (see :mod:`rx_allm.relay`):
each event is serialised when it is written (so an event that cannot be serialised
ends the generation here too), viewers receive the producer's event objects and the
same typed terminal. Timers (heartbeat, idle timeout, retention) run on schedulers:
the producer's on the ``scheduler`` given to :meth:`MemoryRelay.start` (else the
relay's, else the running loop's), a viewer's on the scheduler of its subscription —
so a ``TestScheduler`` drives them all in virtual time.
"""

from __future__ import annotations

import threading
from collections import deque
from itertools import islice
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rx_allm.errors import RxAllmError
from rx_allm.relay.entry import RelayEntry, check_after, check_generation_id, entry_id, new_tag
from rx_allm.relay.failures import cancelled, producer_lost, unknown_generation
from rx_allm.relay.options import RelayOptions, every, scheduler_for
from rx_allm.relay.producer import Producer, Record
from rx_allm.relay.protocol import viewer_observable


class MemoryRelay:
    """The relay of one process (the default): logs in memory, same protocol as ``RedisRelay``."""

    def __init__(self, scheduler: abc.SchedulerBase | None = None, **options: Any) -> None:
        self.options = RelayOptions(**options)
        self.scheduler = scheduler
        self._lock = threading.RLock()
        self._logs: dict[str, _MemoryLog] = {}

    async def start(
        self, generation_id: str, source: Observable[Any], scheduler: abc.SchedulerBase | None = None
    ) -> bool:
        """Run ``source`` as generation ``generation_id``; False (source untouched) if it exists."""
        check_generation_id(generation_id)
        with self._lock:
            if generation_id in self._logs:
                return False
            log = _MemoryLog(self, generation_id, source, scheduler_for(scheduler or self.scheduler))
            self._logs[generation_id] = log
        log.run()
        return True

    def observe(self, generation_id: str, after: str | None = None) -> Observable[RelayEntry]:
        """Entries from the start (or strictly after the entry id ``after``), then the terminal."""

        def attach(
            observer: abc.ObserverBase[RelayEntry],
            position: tuple[int, int] | None,
            scheduler: abc.SchedulerBase | None,
        ) -> abc.DisposableBase:
            log = self._logs.get(generation_id)
            if log is None:
                observer.on_error(unknown_generation(generation_id))
                return Disposable()
            return log.attach(observer, position, scheduler_for(scheduler or self.scheduler))

        return viewer_observable(generation_id, after, attach)

    async def stop(self, generation_id: str) -> bool:
        """Stop a running generation (its viewers get ``cancelled``); False if it had ended."""
        check_generation_id(generation_id)
        log = self._logs.get(generation_id)
        if log is None:
            raise unknown_generation(generation_id)
        return log.producer.stop(cancelled(generation_id, "was stopped"))

    async def close(self) -> None:
        """Stop every running generation."""
        for generation_id in list(self._logs):
            await self.stop(generation_id)

    def _forget(self, generation_id: str) -> None:
        with self._lock:
            self._logs.pop(generation_id, None)


class _MemoryLog:
    """One generation: its retained entries, its terminal, its live viewers and timers."""

    def __init__(
        self, relay: MemoryRelay, generation_id: str, source: Observable[Any], scheduler: abc.SchedulerBase
    ) -> None:
        self.relay = relay
        self.id = generation_id
        self.tag = new_tag()
        self.scheduler = scheduler
        self.lock = relay._lock
        self.entries: deque[RelayEntry] = deque(maxlen=relay.options.maxlen)
        self.last = 0
        self.terminal: Record | None = None
        self.live: set[_MemoryView] = set()
        self.beats = 0
        self.heartbeat = SerialDisposable()
        self.idle = SerialDisposable()
        self.producer = Producer(generation_id, source, self.write)

    def run(self) -> None:
        options = self.relay.options
        self.heartbeat.disposable = every(self.scheduler, options.heartbeat_interval, self._beat)
        self._arm_idle()
        self.producer.run(self.scheduler)

    def write(self, record: Record) -> None:
        with self.lock:
            entry = None
            if record.end:
                self.terminal = record
                self.heartbeat.dispose()
                self.idle.dispose()
                self.scheduler.schedule_relative(
                    self.relay.options.ttl, lambda *_: self.relay._forget(self.id)
                )
            else:
                assert record.event is not None
                entry = RelayEntry(entry_id(record.position, self.tag), record.event)
                self.entries.append(entry)
                self.last = record.position
            for view in tuple(self.live):
                view.deliver(record, entry)

    def attach(
        self,
        observer: abc.ObserverBase[RelayEntry],
        after: tuple[int, int] | None,
        scheduler: abc.SchedulerBase,
    ) -> abc.DisposableBase:
        with self.lock:
            first = self.last - len(self.entries) + 1
            try:
                position = check_after(self.id, after, self.tag, first, self.last)
            except RxAllmError as error:
                observer.on_error(error)
                return Disposable()
            view = _MemoryView(self, observer)
            for entry in islice(self.entries, max(0, position - first + 1), None):
                observer.on_next(entry)
            if self.terminal is not None:
                view.deliver(self.terminal, None)
                return Disposable()
            self.live.add(view)
            self.idle.disposable = Disposable()
            view.watch(scheduler)
        return Disposable(view.leave)

    def _beat(self) -> None:
        self.beats += 1

    def _arm_idle(self) -> None:
        timeout = self.relay.options.idle_timeout

        def expire(*_: Any) -> None:
            with self.lock:
                if not self.live:
                    self.producer.stop(cancelled(self.id, f"had no viewer for {timeout:g} s (idle_timeout)"))

        self.idle.disposable = self.scheduler.schedule_relative(timeout, expire)


class _MemoryView:
    """One live viewer: delivers records, watches the producer's heartbeat."""

    def __init__(self, log: _MemoryLog, observer: abc.ObserverBase[RelayEntry]) -> None:
        self.log = log
        self.observer = observer
        self.watchdog = SerialDisposable()
        self.seen_beats = log.beats
        self.seen_last = log.last

    def deliver(self, record: Record, entry: RelayEntry | None) -> None:
        if entry is not None:
            self.observer.on_next(entry)
            return
        self.close()
        if record.error is None:
            self.observer.on_completed()
        else:
            self.observer.on_error(record.error)

    def watch(self, scheduler: abc.SchedulerBase) -> None:
        self.watchdog.disposable = every(scheduler, self.log.relay.options.heartbeat_timeout, self._check)

    def _check(self) -> None:
        log = self.log
        with log.lock:
            if log.terminal is not None or self not in log.live:
                return
            if log.beats == self.seen_beats and log.last == self.seen_last:
                self.close()
                self.observer.on_error(producer_lost(log.id, log.relay.options.heartbeat_timeout))
                return
            self.seen_beats, self.seen_last = log.beats, log.last

    def close(self) -> None:
        self.watchdog.dispose()
        self.log.live.discard(self)

    def leave(self) -> None:
        with self.log.lock:
            if self not in self.log.live:
                self.watchdog.dispose()
                return
            self.close()
            if not self.log.live and self.log.terminal is None:
                self.log._arm_idle()
