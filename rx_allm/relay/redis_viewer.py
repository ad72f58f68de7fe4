"""The viewer side of ``RedisRelay``: ``XREAD BLOCK`` from the last entry id seen.

Reads return strictly later entries than the last id seen, so resuming is exact. A
viewer behind the log reads batches with the :data:`~rx_allm.relay.redis_scripts.FETCH`
script; a viewer at the end waits with ``XREAD BLOCK`` (one round trip per live entry).
Both refresh the generation's ``watched`` key (the idle timeout). When a blocking read returns nothing,
the viewer checks the producer's heartbeat key: gone without a terminal in the log
means the producer died (``StreamError("timeout")``); the claim gone too means the log
itself is gone (expired, or Redis restarted without it).
Positions must follow each other: a jump means entries were trimmed under a slow
viewer (``StreamError("truncated")``), never a silent gap.
"""

from __future__ import annotations

from typing import Any

from reactivex import abc
from redis.asyncio import Redis

from rx_allm.errors import RxAllmError
from rx_allm.relay.entry import (
    RelayEntry,
    check_after,
    decode_event,
    decode_terminal,
    entry_id,
)
from rx_allm.relay.failures import log_gone, malformed_entry, producer_lost, unknown_generation
from rx_allm.relay.options import RelayOptions
from rx_allm.relay.redis_keys import GenerationKeys
from rx_allm.relay.redis_scripts import FETCH, Line, fetched

#: Entries fetched per read.
BATCH = 1000


def _position(raw_id: bytes) -> int:
    return int(raw_id.partition(b"-")[0])


class RedisView:
    """One subscription's read loop; ``run`` returns once it delivered the terminal."""

    def __init__(
        self,
        client: Redis,
        keys: GenerationKeys,
        generation_id: str,
        options: RelayOptions,
        observer: abc.ObserverBase[RelayEntry],
    ) -> None:
        self.client = client
        self.fetch = client.register_script(FETCH)
        self.idle_ms = int(options.idle_timeout * 1000)
        self.behind = True  # a new viewer reads the log in batches until it caught up
        self.keys = keys
        self.generation_id = generation_id
        self.options = options
        self.observer = observer

    async def run(self, after: tuple[int, int] | None) -> None:
        """Deliver the entries after ``after``, then the terminal."""
        start = await self._start(after)
        if start is None:
            return
        last_id, expected = start
        while True:
            try:
                entries = await self._read(last_id)
            except _Ended as ended:
                self.observer.on_error(ended.error)
                return
            for raw_id, field, payload in entries:
                if _position(raw_id) != expected:
                    why = f"was trimmed under this viewer (entry {expected} is gone)"
                    self.observer.on_error(log_gone(self.generation_id, why))
                    return
                if not self._deliver(expected, raw_id, field, payload):
                    return
                last_id, expected = raw_id, expected + 1

    async def _start(self, after: tuple[int, int] | None) -> tuple[bytes | str, int] | None:
        """The id to read after and the next position, or None after reporting bad input."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.claim)
        pipe.xrange(self.keys.log, count=1)
        pipe.xrevrange(self.keys.log, count=1)
        tag_raw, firsts, lasts = await pipe.execute()
        if tag_raw is None:
            self.observer.on_error(unknown_generation(self.generation_id))
            return None
        tag = int(tag_raw)
        first = _position(firsts[0][0]) if firsts else 0
        last = _position(lasts[0][0]) if lasts else 0
        try:
            position = check_after(self.generation_id, after, tag, first, last)
        except RxAllmError as error:
            self.observer.on_error(error)
            return None
        return (entry_id(position, tag) if position else "0-0"), position + 1

    async def _read(self, last_id: bytes | str) -> list[Line]:
        """The next entries. Behind the log: a :data:`FETCH` batch. At its end: ``XREAD BLOCK``
        (one round trip per live entry) for up to one heartbeat interval, then, if nothing
        came, a look at the producer's heartbeat. Both refresh ``watched``."""
        keys, options = self.keys, self.options
        while True:
            if self.behind:
                lines = fetched(
                    await self.fetch(keys=[keys.log, keys.watched], args=[last_id, BATCH, self.idle_ms])
                )
                self.behind = len(lines) == BATCH
                if lines:
                    return lines
            pipe = self.client.pipeline(transaction=False)
            pipe.set(keys.watched, b"1", px=self.idle_ms)
            pipe.xread({keys.log: last_id}, count=BATCH, block=int(options.heartbeat_interval * 1000))
            _, reply = await pipe.execute()
            if reply:
                lines = _entries(reply)
                self.behind = len(lines) == BATCH
                return lines
            await self._check_producer(last_id)

    async def _check_producer(self, last_id: bytes | str) -> None:
        """Nothing came for a heartbeat interval: raise :class:`_Ended` if the producer or the log is gone."""
        keys = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(keys.alive)
        pipe.exists(keys.claim)
        pipe.xread({keys.log: last_id}, count=1)
        alive, claimed, reply = await pipe.execute()
        if reply:
            return  # an entry arrived meanwhile: the next read gets it
        if not claimed:
            raise _Ended(log_gone(self.generation_id, "is gone (expired, or Redis lost it)"))
        if not alive:
            raise _Ended(producer_lost(self.generation_id, self.options.heartbeat_timeout))

    def _deliver(self, position: int, raw_id: bytes, field: bytes, payload: bytes) -> bool:
        """Emit one entry; False once the terminal (or an unreadable entry) ended the viewer."""
        try:
            if field == b"e":
                self.observer.on_next(RelayEntry(raw_id.decode(), decode_event(payload)))
                return True
            error = decode_terminal(payload)
        except (ValueError, TypeError) as problem:
            self.observer.on_error(malformed_entry(self.generation_id, position, problem))
            return False
        if error is None:
            self.observer.on_completed()
        else:
            self.observer.on_error(error)
        return False


class _Ended(Exception):
    """A viewer ends with ``error`` (raised out of the read loop)."""

    def __init__(self, error: RxAllmError) -> None:
        super().__init__(str(error))
        self.error = error


def _entries(reply: Any) -> list[Line]:
    """An ``XREAD`` reply as lines."""
    return [(raw_id, *next(iter(fields.items()))) for raw_id, fields in reply[0][1]]
