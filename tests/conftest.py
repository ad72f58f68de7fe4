"""Shared test helpers: a provider emulator per test, the wire fixture bodies, a recorder.

* ``emulator`` — a :class:`~rx_allm.testing.emulator.ProviderEmulator` listening on
  127.0.0.1 for the duration of one async test.
* ``redis_server`` — a real ``redis-server`` (:class:`~rx_allm.testing.redis_server.RedisServer`)
  on a free loopback port, persistence off, for one test.
* ``fixture_bytes(name)`` — ``tests/fixtures/wire/<name>`` byte for byte (``.sse`` is
  added when missing).
* ``record(observable)`` — subscribe on the running loop and wait (bounded) for the
  terminal notification; the :class:`Recording` keeps every notification in order.
* ``openai_engine``, ``hello``, ``events_of``, ``of_type``, ``usage_chunks``,
  ``wait_until``, ``connections`` — small helpers several test modules share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from reactivex import Observable

import rx_allm as allm
from rx_allm.events import Event, RawChunk
from rx_allm.testing.emulator import ProviderEmulator
from rx_allm.testing.redis_server import RedisServer

WIRE_FIXTURES = Path(__file__).parent / "fixtures" / "wire"
OPENAI_KEY = "sk-test-openai-0123456789"


def fixture_bytes(name: str) -> bytes:
    """The raw bytes of a wire fixture (``"openai_text"`` or ``"openai_text.sse"``)."""
    path = WIRE_FIXTURES / (name if name.endswith(".sse") else f"{name}.sse")
    return path.read_bytes()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free loopback port, persistence off (stopped after the test)."""
    with RedisServer() as server:
        yield server


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[ProviderEmulator]:
    """A started emulator (stopped after the test)."""
    async with ProviderEmulator() as emu:
        yield emu


@dataclass
class Recording:
    """What one subscription saw: ``items`` (on_next values) and how it ended."""

    items: list[Any] = field(default_factory=list)
    error: Exception | None = None
    completed: bool = False
    after_terminal: list[Any] = field(default_factory=list)  # anything delivered after the end

    @property
    def ended(self) -> bool:
        return self.completed or self.error is not None


async def record(source: Observable[Any], timeout: float = 5.0) -> Recording:
    """Subscribe to ``source`` and wait up to ``timeout`` seconds for its terminal notification."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    rec = Recording()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def on_next(item: Any) -> None:
        (rec.after_terminal if rec.ended else rec.items).append(item)

    def on_error(error: Exception) -> None:
        if rec.ended:
            rec.after_terminal.append(error)
        rec.error = rec.error or error
        finish()

    def on_completed() -> None:
        if rec.ended:
            rec.after_terminal.append("completed")
        rec.completed = True
        finish()

    subscription = source.subscribe(on_next=on_next, on_error=on_error, on_completed=on_completed)
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        subscription.dispose()
    return rec


def openai_engine(emu: ProviderEmulator, model: str = "gpt-4o-mini", **adapter_opts: Any) -> allm.Engine:
    """An OpenAI engine pointed at ``emu`` with :data:`OPENAI_KEY`."""
    opts = {"base_url": emu.base_url("openai"), "api_key": OPENAI_KEY, **adapter_opts}
    return allm.Engine(adapter="openai", adapter_opts=opts, model=model)


def hello() -> allm.Request:
    return allm.request([allm.user("Bonjour")])


async def events_of(engine: allm.Engine, **options: Any) -> tuple[list[Event], Exception | None]:
    """Every event of one :func:`hello` stream (raw chunks included) and its terminal error, if any."""
    events: list[Event] = []
    stream = allm.stream_generate(engine, hello(), include_raw_chunks=True, **options)
    try:
        async for event in allm.iterate(stream):
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


def of_type(events: Sequence[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def usage_chunks(events: Sequence[Event]) -> list[allm.Usage]:
    """The usage of every ``raw_chunk`` of kind ``"usage"``."""
    usages = [e.data for e in events if isinstance(e, RawChunk) and e.kind == "usage"]
    assert all(isinstance(usage, allm.Usage) for usage in usages)
    return usages


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll ``predicate`` every 5 ms from a plain thread; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def connections(session: aiohttp.ClientSession) -> tuple[int, int]:
    """(in use, idle in the pool) for a session's connector (aiohttp keeps no public count)."""
    connector = session.connector
    assert isinstance(connector, aiohttp.BaseConnector)
    return len(connector._acquired), sum(len(idle) for idle in connector._conns.values())
