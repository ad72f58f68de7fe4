"""``RedisRelay``: generations in Redis Streams, shared by every process that reaches the server.

Uses redis-py's asyncio client (extra ``redis``) on the event loop of its first use:
start, observe and stop from async code on that loop. Client retries are off (one
failed command is one typed error, and an ``XADD`` is never sent twice); commands
time out after ``timeout`` seconds, so an unreachable or stopped Redis is a typed
``AdapterError`` ("network_error" / "timeout"), never a hang.

Stops travel on one pub/sub channel (``<prefix>:stop``, the message is the generation
id); each relay with producers listens on it, so a stop from any process reaches the
producer wherever it runs. A viewer leaving publishes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rx_allm.relay.entry import RelayEntry, check_generation_id, new_tag
from rx_allm.relay.failures import no_running_loop, redis_failure, unknown_generation
from rx_allm.relay.options import RelayOptions
from rx_allm.relay.protocol import viewer_observable
from rx_allm.relay.redis_keys import REDIS_FAILURES, GenerationKeys, failure_reason
from rx_allm.relay.redis_producer import RedisProducer
from rx_allm.relay.redis_viewer import RedisView


class RedisRelay:
    """The relay across processes and hosts: one Redis stream per generation."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "rx_allm",
        timeout: float = 5.0,
        **options: Any,
    ) -> None:
        self.options = RelayOptions(**options)
        self.prefix = prefix
        self.timeout = timeout
        self._url = url
        self._client: Redis | None = None
        self._producers: dict[str, RedisProducer] = {}
        self._listener: asyncio.Task[None] | None = None
        self._listening: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"RedisRelay(prefix={self.prefix!r})"  # the URL may hold a password

    @property
    def client(self) -> Redis:
        """The asyncio client (created on first use)."""
        if self._client is None:
            self._client = Redis.from_url(
                self._url,
                socket_timeout=self.timeout + self.options.heartbeat_interval,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),
            )
        return self._client

    def keys(self, generation_id: str) -> GenerationKeys:
        """The Redis keys of a generation."""
        return GenerationKeys.of(self.prefix, generation_id)

    async def start(self, generation_id: str, source: Observable[Any]) -> bool:
        """Claim the generation (``SET NX``) and run ``source``; False if anyone claimed it before."""
        check_generation_id(generation_id)
        keys, options, tag = self.keys(generation_id), self.options, new_tag()
        try:
            await self._listen()
            if not await self.client.set(keys.claim, tag, nx=True, px=int(options.ttl * 1000)):
                return False
            pipe = self.client.pipeline(transaction=False)
            pipe.set(keys.alive, b"1", px=int(options.heartbeat_timeout * 1000))
            pipe.set(keys.watched, b"1", px=int(options.idle_timeout * 1000))
            await pipe.execute()
        except REDIS_FAILURES as problem:
            raise redis_failure(generation_id, "starting", problem, failure_reason(problem)) from None
        producer = RedisProducer(self.client, keys, generation_id, tag, options, self._forget)
        self._producers[generation_id] = producer
        producer.run(source)
        return True

    def observe(self, generation_id: str, after: str | None = None) -> Observable[RelayEntry]:
        """Entries from the start (or strictly after the entry id ``after``), then the terminal.

        Subscribe on the relay's event loop (elsewhere: ``ValidationError``); each subscription
        is one read task.
        """

        def attach(
            observer: abc.ObserverBase[RelayEntry],
            position: tuple[int, int] | None,
            scheduler: abc.SchedulerBase | None,
        ) -> abc.DisposableBase:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                observer.on_error(no_running_loop(generation_id))
                return Disposable()
            view = RedisView(self.client, self.keys(generation_id), generation_id, self.options, observer)
            task = loop.create_task(self._view(view, position))
            return Disposable(lambda: _cancel(task))

        return viewer_observable(generation_id, after, attach)

    async def _view(self, view: RedisView, after: tuple[int, int] | None) -> None:
        try:
            await view.run(after)
        except REDIS_FAILURES as problem:
            error = redis_failure(view.generation_id, "reading the log", problem, failure_reason(problem))
            view.observer.on_error(error)

    async def stop(self, generation_id: str) -> bool:
        """Stop a running generation from any process; False if it had already ended."""
        check_generation_id(generation_id)
        local = self._producers.get(generation_id)
        if local is not None:
            return local.stop()
        keys = self.keys(generation_id)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.exists(keys.claim)
            pipe.exists(keys.alive)
            claimed, alive = await pipe.execute()
            if not claimed:
                raise unknown_generation(generation_id)
            if alive:
                await self.client.publish(f"{self.prefix}:stop", generation_id)
        except REDIS_FAILURES as problem:
            raise redis_failure(generation_id, "stopping", problem, failure_reason(problem)) from None
        return bool(alive)

    async def wait(self, generation_id: str) -> None:
        """Until a generation this relay produces wrote its terminal (returns at once otherwise)."""
        producer = self._producers.get(generation_id)
        if producer is not None:
            await producer.wait()

    async def close(self) -> None:
        """Stop this relay's generations (their logs end ``cancelled``), then disconnect."""
        producers = list(self._producers.values())
        for producer in producers:
            producer.stop("was stopped: its relay closed")
        for producer in producers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(producer.wait(), self.timeout)
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *REDIS_FAILURES):
                await listener
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _forget(self, producer: RedisProducer) -> None:
        if self._producers.get(producer.generation_id) is producer:
            del self._producers[producer.generation_id]

    async def _listen(self) -> None:
        """Make sure this relay listens on the stop channel (subscribed before any claim)."""
        if self._listener is not None and not self._listener.done():
            assert self._listening is not None
            await asyncio.shield(self._listening)
            return
        loop = asyncio.get_running_loop()
        self._listening = loop.create_future()
        self._listener = loop.create_task(self._stops(self._listening))
        await asyncio.shield(self._listening)

    async def _stops(self, listening: asyncio.Future[None]) -> None:
        pubsub: PubSub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(f"{self.prefix}:stop")
        except REDIS_FAILURES as problem:
            listening.set_exception(problem)
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            return
        listening.set_result(None)
        try:
            while True:
                message = await pubsub.get_message(timeout=self.options.heartbeat_interval)
                if message is not None and message.get("type") == "message":
                    producer = self._producers.get(message["data"].decode())
                    if producer is not None:
                        producer.stop()
        except REDIS_FAILURES:
            for producer in list(self._producers.values()):
                producer.stop("was stopped: the stop channel failed")
        finally:
            with contextlib.suppress(*REDIS_FAILURES):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
