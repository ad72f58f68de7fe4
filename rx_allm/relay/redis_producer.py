"""The producer side of ``RedisRelay``: pipelined ``XADD``s, the heartbeat, the idle check.

Records from :class:`~rx_allm.relay.producer.Producer` queue up; one flush task at a
time sends what is queued (up to :data:`MAX_BATCH` records) in one call of the
:data:`~rx_allm.relay.redis_scripts.APPEND` script (``XADD`` with an explicit id and
``MAXLEN ~`` per record, then ``PEXPIRE``), so a fast source is written in large
batches and a slow one with one round trip per event. The terminal's batch also
deletes the heartbeat key. A Redis failure disposes the source (nobody could see its output) and ends the
producer without a terminal: viewers learn it from Redis themselves, or from the
missing heartbeat.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from reactivex import Observable
from reactivex.scheduler.eventloop import AsyncIOScheduler
from redis.asyncio import Redis

from rx_allm.relay.failures import cancelled
from rx_allm.relay.options import RelayOptions
from rx_allm.relay.producer import Producer, Record
from rx_allm.relay.redis_keys import REDIS_FAILURES, GenerationKeys
from rx_allm.relay.redis_scripts import APPEND

#: Records per append call (a script runs atomically: keep each one short).
MAX_BATCH = 2000


class RedisProducer:
    """Runs one generation's source into its Redis stream."""

    def __init__(
        self,
        client: Redis,
        keys: GenerationKeys,
        generation_id: str,
        tag: int,
        options: RelayOptions,
        on_done: Callable[[RedisProducer], None],
    ) -> None:
        self.client = client
        self.append = client.register_script(APPEND)
        self.keys = keys
        self.tag = tag
        self.options = options
        self.producer: Producer | None = None
        self.generation_id = generation_id
        self.done = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._lock = threading.Lock()
        self._pending: list[Record] = []
        self._flushing = False
        self._on_done = on_done
        self._heartbeat: asyncio.Task[None] | None = None

    def run(self, source: Observable[Any]) -> None:
        """Subscribe the source on the running loop and start beating."""
        self.producer = Producer(self.generation_id, source, self.write)
        self._heartbeat = self._loop.create_task(self._beat())
        self.producer.run(AsyncIOScheduler(self._loop))

    def stop(self, why: str = "was stopped") -> bool:
        """Dispose the source; the log ends with ``StreamError("cancelled")``."""
        assert self.producer is not None
        return self.producer.stop(cancelled(self.generation_id, why))

    def write(self, record: Record) -> None:
        """Queue a record and make sure a flush runs (any thread)."""
        with self._lock:
            self._pending.append(record)
            if self._flushing:
                return
            self._flushing = True
        if threading.get_ident() == self._thread:
            self._loop.create_task(self._flush())
        else:
            self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self._flush()))

    async def _flush(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                if not batch:
                    self._flushing = False
                    return
            try:
                await self._send(batch)
            except REDIS_FAILURES:
                self._abandon()
                return
            if batch[-1].end:
                self._finish()
                return

    async def _send(self, batch: list[Record]) -> None:
        keys, options = self.keys, self.options
        head = [options.maxlen, self.tag, batch[0].position, int(options.ttl * 1000), int(batch[-1].end)]
        await self.append(keys=[keys.log, keys.alive, keys.claim], args=[*head, *(r.data for r in batch)])

    async def _beat(self) -> None:
        """Refresh the heartbeat and retention; cancel the generation when nobody watches."""
        options, keys = self.options, self.keys
        while True:
            await asyncio.sleep(options.heartbeat_interval)
            pipe = self.client.pipeline(transaction=False)
            pipe.set(keys.alive, b"1", px=int(options.heartbeat_timeout * 1000), xx=True)
            pipe.exists(keys.watched)
            pipe.pexpire(keys.claim, int(options.ttl * 1000))
            try:
                beating, watched, _ = await pipe.execute()
            except REDIS_FAILURES:
                self._abandon()
                return
            if not beating:  # the heartbeat expired before this beat: viewers gave up on us
                self.stop(f"missed its heartbeat deadline ({options.heartbeat_timeout:g} s)")
            elif not watched:
                self.stop(f"had no viewer for {options.idle_timeout:g} s (idle_timeout)")

    def _abandon(self) -> None:
        """Redis failed: stop the source, write nothing more."""
        with self._lock:
            self._pending, self._flushing = [], True  # later records are dropped
        if self.producer is not None:
            self.producer.stop(cancelled(self.generation_id, "lost its Redis connection"))
        self._finish()

    def _finish(self) -> None:
        if self._heartbeat is not None and self._heartbeat is not asyncio.current_task():
            self._heartbeat.cancel()
        if not self.done.done():
            self.done.set_result(None)
        self._on_done(self)

    async def wait(self) -> None:
        """Until the terminal was written (or Redis failed)."""
        await asyncio.shield(self.done)
