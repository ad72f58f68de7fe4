"""RedisRelay against a real redis-server, producer and viewers in separate processes.

The producer runs in a child process (``tests/relay_worker.py``) and streams from the
provider emulator of this test over real sockets; viewers run in this process or in
other children. Every wait is bounded; assertions are on what the emulator recorded
(POSTs, disconnects) and on the exact entries each viewer received.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import reactivex

from rx_allm.errors import AdapterError, RxAllmError, StreamError, ValidationError
from rx_allm.events import RawChunk, TextDelta
from rx_allm.relay import RedisRelay
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import record
from rx_allm.testing.redis_server import RedisServer, free_port

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("relay_worker.py")
FAST = {"heartbeat_interval": 0.1, "heartbeat_timeout": 0.5, "idle_timeout": 5.0}
WAIT = 15.0  # bound of every wait on another process
WORDS = " ".join(f"w{i}" for i in range(12))
SLOW = Reply(text=" ".join(f"w{i}" for i in range(400)), chunk_delay=0.05)  # ~20 s unless stopped


@pytest_asyncio.fixture
async def relay(redis_server: RedisServer) -> AsyncIterator[RedisRelay]:
    relay = RedisRelay(redis_server.url, **FAST)
    yield relay
    await relay.close()


class Worker:
    """A child process running ``relay_worker.py``; reads its JSON lines with bounded waits."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[Any] = []

    @classmethod
    async def spawn(cls, *args: str) -> Worker:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), *args, stdout=asyncio.subprocess.PIPE, env=env
        )
        return cls(process)

    async def next(self) -> Any:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), WAIT)
        assert line, f"worker exited (code {self.process.returncode}) after {self.lines}"
        self.lines.append(json.loads(line))
        return self.lines[-1]

    async def until(self, key: str) -> Any:
        for _ in range(10_000):
            line = await self.next()
            if key in line:
                return line
        raise AssertionError(f"no {key!r} line")

    async def exit_code(self) -> int:
        return await asyncio.wait_for(self.process.wait(), WAIT)

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


async def producer(server: RedisServer, generation_id: str, emu: ProviderEmulator, *extra: str) -> Worker:
    return await Worker.spawn("produce", server.url, generation_id, json.dumps(FAST), emu.url, *extra)


async def viewer(server: RedisServer, generation_id: str, after: str = "-", *extra: str) -> Worker:
    return await Worker.spawn("view", server.url, generation_id, json.dumps(FAST), after, *extra)


def texts(entries: list[Any]) -> list[str]:
    return [e.event.delta for e in entries if isinstance(e.event, TextDelta)]


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[list[Worker]]:
    spawned: list[Worker] = []
    yield spawned
    for worker in spawned:
        worker.kill()
        await worker.exit_code()


async def test_resume_from_every_position_gives_the_exact_rest(
    redis_server: RedisServer, relay: RedisRelay, emulator: ProviderEmulator, workers: list[Worker]
) -> None:
    emulator.default = Reply(text=WORDS, chunk_delay=0.01)
    workers.append(early := await viewer(redis_server, "g-resume"))  # before anyone started it
    assert (await early.until("end"))["end"]["errors"] == [["generation_id", "unknown generation"]]
    workers.append(prod := await producer(redis_server, "g-resume", emulator))
    assert await prod.next() == {"started": True}
    workers.append(live := await viewer(redis_server, "g-resume"))
    assert await live.until("end") == {"end": "completed"}
    full = await record(relay.observe("g-resume"), timeout=WAIT)
    assert full.completed and [e.id for e in full.events] == [line["id"] for line in live.lines[:-1]]
    assert " ".join(texts(full.events)).split() == WORDS.split()
    positions = [e.position for e in full.events]
    assert positions == list(range(1, len(full.events) + 1))
    for k, entry in enumerate(full.events):
        rest = await record(relay.observe("g-resume", after=entry.id), timeout=WAIT)
        assert rest.completed and rest.events == full.events[k + 1 :]
    assert emulator.posts() == 1


async def test_stop_from_a_viewers_process_closes_the_provider_connection(
    redis_server: RedisServer, emulator: ProviderEmulator, workers: list[Worker]
) -> None:
    emulator.default = SLOW
    workers.append(prod := await producer(redis_server, "g-stop", emulator))
    assert await prod.next() == {"started": True}
    workers.append(watching := await viewer(redis_server, "g-stop"))
    for _ in range(3):
        assert "id" in await watching.next()
    workers.append(stopper := await Worker.spawn("stop", redis_server.url, "g-stop", json.dumps(FAST)))
    assert await stopper.next() == {"stopped": True}
    await emulator.wait_for_disconnects(1, timeout=0.5)  # the latency figure: benchmarks/relay.py
    assert [d.request_index for d in emulator.disconnects] == [0] and emulator.completed == []
    end = (await watching.until("end"))["end"]
    assert (end["type"], end["reason"]) == ("StreamError", "cancelled")
    assert await prod.until("ended") == {"ended": True}


async def test_a_viewer_leaving_never_stops_the_generation(
    redis_server: RedisServer, relay: RedisRelay, emulator: ProviderEmulator, workers: list[Worker]
) -> None:
    emulator.default = Reply(text=" ".join(f"w{i}" for i in range(40)), chunk_delay=0.02)
    workers.append(prod := await producer(redis_server, "g-leave", emulator))
    assert await prod.next() == {"started": True}
    workers.append(leaving := await viewer(redis_server, "g-leave", "-", "3"))
    assert await leaving.until("left") == {"left": 3}
    assert await leaving.exit_code() == 0
    assert await prod.until("ended") == {"ended": True}
    after = await record(relay.observe("g-leave"), timeout=WAIT)
    assert after.completed and len(texts(after.events)) == 40
    assert emulator.disconnects == [] and emulator.completed == [0]


async def test_viewers_of_a_killed_producer_get_a_typed_timeout(
    redis_server: RedisServer, relay: RedisRelay, emulator: ProviderEmulator, workers: list[Worker]
) -> None:
    emulator.default = SLOW
    workers.append(prod := await producer(redis_server, "g-kill", emulator))
    assert await prod.next() == {"started": True}
    watching = relay.observe("g-kill")
    recording = asyncio.ensure_future(record(watching, timeout=WAIT))
    await asyncio.sleep(0.3)
    prod.kill()
    result = await recording
    assert isinstance(result.error, StreamError) and result.error.reason == "timeout"
    assert result.error.metadata["relay"] == "producer_lost" and result.events


async def test_redis_restarted_is_a_typed_error_for_viewers_and_stops_the_producer(
    redis_server: RedisServer, relay: RedisRelay, emulator: ProviderEmulator, workers: list[Worker]
) -> None:
    emulator.default = SLOW
    workers.append(prod := await producer(redis_server, "g-restart", emulator))
    assert await prod.next() == {"started": True}
    recording = asyncio.ensure_future(record(relay.observe("g-restart"), timeout=WAIT))
    await asyncio.sleep(0.3)
    redis_server.restart()
    result = await recording
    assert isinstance(result.error, AdapterError) and result.error.reason == "network_error"
    await emulator.wait_for_disconnects(1, timeout=WAIT)  # the producer disposed its source
    again = await record(relay.observe("g-restart"), timeout=WAIT)
    assert isinstance(again.error, ValidationError)  # the log went with the restart


async def test_redis_unreachable_is_a_typed_error_never_a_hang() -> None:
    relay = RedisRelay(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0, **FAST)
    try:
        with pytest.raises(AdapterError) as started:
            await relay.start("g", reactivex.empty())
        assert started.value.reason == "network_error" and started.value.metadata["relay"] == "redis"
        seen = await record(relay.observe("g"), timeout=WAIT)
        assert isinstance(seen.error, AdapterError) and seen.error.reason == "network_error"
        with pytest.raises(AdapterError):
            await relay.stop("g")
    finally:
        await relay.close()


async def test_racing_producers_send_exactly_one_post(
    redis_server: RedisServer, relay: RedisRelay, emulator: ProviderEmulator, workers: list[Worker]
) -> None:
    emulator.default = Reply(text=WORDS, chunk_delay=0.01)
    go_at = str(time.time() + 2.0)
    racers = [await producer(redis_server, "g-race", emulator, go_at) for _ in range(3)]
    workers.extend(racers)
    started = [(await racer.next())["started"] for racer in racers]
    assert sorted(started) == [False, False, True]
    assert await asyncio.gather(*(r.exit_code() for r in racers)) == [0, 0, 0]
    seen = await record(relay.observe("g-race"), timeout=WAIT)
    assert seen.completed and emulator.posts() == 1


async def test_bad_input_is_a_typed_error(relay: RedisRelay) -> None:
    assert await relay.start("g-one", reactivex.of(TextDelta(delta="a"), TextDelta(delta="b")))
    assert await relay.start("g-two", reactivex.of(TextDelta(delta="c")))
    await relay.wait("g-one")
    await relay.wait("g-two")
    one = await record(relay.observe("g-one"), timeout=WAIT)
    two = await record(relay.observe("g-two"), timeout=WAIT)
    assert [e.event.delta for e in one.events] == ["a", "b"] and one.completed
    tag = one.events[0].id.split("-")[1]
    for after, why in [(two.events[0].id, "another generation"), (f"9-{tag}", "ahead of the log")]:
        bad = await record(relay.observe("g-one", after=after), timeout=WAIT)
        assert isinstance(bad.error, ValidationError) and why in bad.error.message and not bad.events
    unknown = await record(relay.observe("g-none"), timeout=WAIT)
    assert isinstance(unknown.error, ValidationError) and not unknown.events
    with pytest.raises(ValidationError):
        relay.observe("g-one", after="1-2-3")
    with pytest.raises(ValidationError):
        await relay.stop("g-none")
    assert await relay.stop("g-one") is False


async def test_an_unserialisable_event_ends_the_generation_with_a_typed_error(relay: RedisRelay) -> None:
    source = reactivex.of(TextDelta(delta="a"), RawChunk(kind="custom", data=object()), TextDelta(delta="b"))
    assert await relay.start("g-bad", source)
    await relay.wait("g-bad")
    seen = await record(relay.observe("g-bad"), timeout=WAIT)
    assert [e.event.delta for e in seen.events] == ["a"]
    assert isinstance(seen.error, StreamError) and seen.error.reason == "malformed_event"


async def test_the_same_typed_error_reaches_a_viewer_in_another_process(
    redis_server: RedisServer, emulator: ProviderEmulator, workers: list[Worker]
) -> None:
    emulator.default = Reply(text=WORDS, status=429, headers={"Retry-After": "2"})
    workers.append(prod := await producer(redis_server, "g-error", emulator))
    assert await prod.next() == {"started": True}
    assert await prod.until("ended") == {"ended": True}
    workers.append(watching := await viewer(redis_server, "g-error"))
    end = (await watching.until("end"))["end"]
    error = RxAllmError.from_dict(end)
    assert isinstance(error, AdapterError) and error.reason == "rate_limited" and error.retry_after_ms == 2000


async def test_idle_timeout_cancels_an_unwatched_generation(
    redis_server: RedisServer, emulator: ProviderEmulator
) -> None:
    emulator.default = SLOW
    relay = RedisRelay(redis_server.url, heartbeat_interval=0.1, heartbeat_timeout=0.5, idle_timeout=0.4)
    try:
        engine_source = _emulated(emulator)
        assert await relay.start("g-idle", engine_source)
        await asyncio.wait_for(relay.wait("g-idle"), WAIT)
        await emulator.wait_for_disconnects(1, timeout=WAIT)
        seen = await record(relay.observe("g-idle"), timeout=WAIT)
        assert isinstance(seen.error, StreamError) and seen.error.reason == "cancelled"
        assert "idle_timeout" in seen.error.message
    finally:
        await relay.close()


async def test_retention_trims_with_maxlen_and_expires_with_ttl(redis_server: RedisServer) -> None:
    # A long ttl: nothing may expire while the trimmed log is read, however loaded the machine.
    relay = RedisRelay(redis_server.url, maxlen=5, ttl=WAIT * 4, **FAST)
    try:
        deltas = [TextDelta(delta=str(i)) for i in range(500)]
        assert await relay.start("g-trim", reactivex.from_iterable(deltas))
        await relay.wait("g-trim")
        keys = relay.keys("g-trim")
        assert await relay.client.xlen(keys.log) < 500  # MAXLEN ~ trims whole nodes, approximately
        for key in (keys.log, keys.claim):  # Redis's own clock: both expire ttl after the last write
            assert 0 < await relay.client.pttl(key) <= WAIT * 4 * 1000, key
        trimmed = await record(relay.observe("g-trim"), timeout=WAIT)
        assert isinstance(trimmed.error, ValidationError) and "retained" in trimmed.error.message
    finally:
        await relay.close()
    # A short ttl: wait on Redis until the keys are gone, then the generation is unknown.
    relay = RedisRelay(redis_server.url, ttl=0.2, **FAST)
    try:
        assert await relay.start("g-expire", reactivex.of(TextDelta(delta="x")))
        await relay.wait("g-expire")
        keys = relay.keys("g-expire")
        deadline = time.monotonic() + WAIT
        while await relay.client.exists(keys.log, keys.claim, keys.alive):
            assert time.monotonic() < deadline, "the generation's keys did not expire"
            await asyncio.sleep(0.05)
        gone = await record(relay.observe("g-expire"), timeout=WAIT)
        assert isinstance(gone.error, ValidationError) and "no generation" in gone.error.message
    finally:
        await relay.close()


def _emulated(emulator: ProviderEmulator) -> reactivex.Observable[Any]:
    import rx_allm as allm

    engine = allm.Engine(
        adapter="openai", adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "sk-test-relay-1"}
    )
    return allm.stream_generate(engine, allm.request([allm.user("hi")]), model="gpt-4o-mini")
