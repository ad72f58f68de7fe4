"""The HTTP transport through the OpenAI adapter: disposal, laziness, one POST, sessions, threads.

Everything runs over real sockets against the provider emulator. Time-based assertions
only bound how long something may take (disposal must reach the server within 0.5 s).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from helpers import connections, openai_engine, until
from reactivex import operators as ops

import rx_allm as allm
from rx_allm._connections import session_for_loop
from rx_allm.events import Event, MessageCompleted, TextDelta, ToolCallStarted
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec
from rx_allm.testing.recording import record

REQ = allm.request([allm.user("hi")])
DISPOSE_BUDGET = 0.5  # seconds from dispose to the server seeing the connection closed
STREAMS = [pytest.param({}, id="chat"), pytest.param({"endpoint": "responses"}, id="responses")]


async def disconnect_delay(emu: ProviderEmulator, disposed_at: float) -> float:
    await emu.wait_for_disconnects(1, timeout=2.0)
    return emu.disconnects[0].time - disposed_at


# -- disposal -------------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("adapter_opts", "stall_after"),
    # the reply stalls right after the second call opened: only the client can end the exchange
    [pytest.param({}, 9, id="chat"), pytest.param({"endpoint": "responses"}, 17, id="responses")],
)
async def test_take_mid_stream_closes_the_connection_promptly(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any], stall_after: int
) -> None:
    calls = [ToolCallSpec("first", {"a": 1}, id="call_1"), ToolCallSpec("second", {"b": 2}, id="call_2")]
    emulator.enqueue(Reply(text="alpha beta gamma", tool_calls=calls, stall_after=stall_after))
    events = allm.stream_generate(
        openai_engine(emulator, **adapter_opts), REQ, emit_text_deltas=False, emit_tool_deltas=False
    )
    disposed_at: list[float] = []
    rec = await record(
        events.pipe(ops.take(4), ops.do_action(on_completed=lambda: disposed_at.append(time.monotonic())))
    )
    assert rec.completed
    kinds = ["message_started", "text_completed", "tool_call_started", "tool_call_started"]
    assert [e.type for e in rec.events] == kinds
    assert [e.id for e in rec.events if isinstance(e, ToolCallStarted)] == ["call_1", "call_2"]
    assert await disconnect_delay(emulator, disposed_at[0]) < DISPOSE_BUDGET
    assert emulator.posts() == 1 and emulator.completed == []


@pytest.mark.asyncio
async def test_dispose_while_stalled_and_while_waiting_for_headers(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="one two three", stall_after=2), Reply(header_delay=5.0))
    eng = openai_engine(emulator)
    first = asyncio.Event()
    subscription = allm.stream_generate(eng, REQ).subscribe(
        on_next=lambda e: first.set() if isinstance(e, TextDelta) else None
    )
    await asyncio.wait_for(first.wait(), 2.0)
    disposed_at = time.monotonic()
    subscription.dispose()
    assert await disconnect_delay(emulator, disposed_at) < DISPOSE_BUDGET

    seen: list[Any] = []
    subscription = allm.stream_generate(eng, REQ).subscribe(on_next=seen.append, on_error=seen.append)
    while emulator.posts() < 2:  # the request is in flight, its headers are 5 s away
        await asyncio.sleep(0.005)
    disposed_at = time.monotonic()
    subscription.dispose()
    await emulator.wait_for_disconnects(2, timeout=2.0)
    assert emulator.disconnects[1].time - disposed_at < DISPOSE_BUDGET
    assert seen == []


@pytest.mark.asyncio
async def test_on_event_raising_ends_the_stream_and_cancels_the_request(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="one two three", stall_after=3))

    def on_event(event: Event) -> None:
        if isinstance(event, TextDelta):
            raise RuntimeError("consumer bug")

    rec = await record(allm.stream_generate(openai_engine(emulator), REQ, on_event=on_event))
    assert isinstance(rec.error, RuntimeError) and [e.type for e in rec.events] == ["message_started"]
    await emulator.wait_for_disconnects(1, timeout=2.0)


# -- cold, lazy, one POST ---------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("adapter_opts", STREAMS)
async def test_cold_and_lazy_one_post_per_subscription(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any]
) -> None:
    events = allm.stream_generate(openai_engine(emulator, **adapter_opts), REQ)
    await asyncio.sleep(0.05)  # an eager implementation would have sent its request by now
    assert emulator.posts() == 0
    first = await record(events)
    assert emulator.posts() == 1
    second = await record(events)
    assert emulator.posts() == 2
    for rec in (first, second):
        assert rec.completed and isinstance(rec.events[-1], MessageCompleted)
        assert rec.events[-1].message.content == "Hello from the emulator."


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "reply",
    [Reply(status=503), Reply(text="a b c", truncate_after=2), Reply(text="a b c", reset_after=2)],
    ids=["503", "truncated", "reset"],
)
async def test_a_failed_stream_is_never_retried(emulator: ProviderEmulator, reply: Reply) -> None:
    emulator.enqueue(reply)
    rec = await record(allm.stream_generate(openai_engine(emulator), REQ))
    assert rec.error is not None
    await asyncio.sleep(0.05)
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_redirect_is_not_followed(emulator: ProviderEmulator) -> None:
    target = emulator.base_url("openai") + "/chat/completions"
    emulator.enqueue(Reply(status=307, headers={"Location": target}), Reply(text="should never be read"))
    rec = await record(allm.stream_generate(openai_engine(emulator), REQ))
    error = rec.error
    assert type(error) is allm.AdapterError and error.status == 307 and error.provider == "openai"
    assert "redirect not followed" in error.message
    assert rec.events == [] and emulator.posts() == 1


# -- sessions -----------------------------------------------------------------------------------
def test_library_session_is_reused_and_closed_at_loop_shutdown() -> None:
    sessions: list[aiohttp.ClientSession] = []

    async def main() -> None:
        async with ProviderEmulator() as emu:
            for _ in range(3):
                response = await allm.generate(openai_engine(emu), REQ)
                assert response.ok
                sessions.append(await session_for_loop())

    asyncio.run(main())
    assert sessions[0] is sessions[1] is sessions[2]
    assert sessions[0].closed  # closed by the loop's async-generator shutdown
    gc.collect()  # an unclosed session/connector would warn here (ResourceWarning is an error)


@pytest.mark.asyncio
async def test_user_session_is_used_and_not_closed(emulator: ProviderEmulator) -> None:
    started: list[str] = []

    async def on_request_start(session: Any, context: Any, params: aiohttp.TraceRequestStartParams) -> None:
        started.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as own:
        eng = openai_engine(emulator, session=own)
        assert (await allm.generate(eng, REQ)).ok
        emulator.enqueue(Reply(status=500))
        assert (await allm.generate(eng, REQ)).finish_reason == "error"
        assert not own.closed
        assert started == [emulator.base_url("openai") + "/chat/completions"] * 2


@pytest.mark.asyncio
@pytest.mark.parametrize("opts", STREAMS)
async def test_a_completed_stream_returns_its_connection_to_the_pool(
    emulator: ProviderEmulator, opts: dict[str, Any]
) -> None:
    created: list[int] = []

    async def on_create(session: Any, context: Any, params: Any) -> None:
        created.append(1)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    async with aiohttp.ClientSession(trace_configs=[trace]) as own:
        eng = openai_engine(emulator, session=own, **opts)
        for _ in range(10):
            emulator.enqueue(Reply(text="hello there", tail_delay=0.02))  # the body ends after the marker
            assert (await allm.generate(eng, REQ)).ok
            await until(lambda: idle(own), timeout=5.0)  # the tail read: back in the pool
    assert len(created) == 1  # the tail of each body is read, so one keep-alive connection serves all 10
    assert emulator.posts() == 10


def idle(session: aiohttp.ClientSession) -> bool:
    """No connection in use and at least one idle in the pool."""
    in_use, pooled = connections(session)
    return in_use == 0 and pooled > 0


# -- sync code and other threads --------------------------------------------------------------------
@pytest.fixture
def threaded_emulator() -> Iterator[ProviderEmulator]:
    """An emulator served from its own thread, for tests without a running loop."""
    with ProviderEmulator(default=Reply(text="sync hello")).running() as emu:
        yield emu


def test_generate_sync_and_run_without_a_loop(threaded_emulator: ProviderEmulator) -> None:
    eng = openai_engine(threaded_emulator)
    response = allm.generate_sync(eng, REQ)
    assert response.ok and response.output_text == "sync hello"
    events = allm.stream_generate(eng, REQ).pipe(ops.to_list()).run()
    assert isinstance(events[-1], MessageCompleted) and events[-1].message.content == "sync hello"
    threaded_emulator.enqueue(Reply(status=429, headers={"Retry-After": "2"}))
    failed = allm.generate_sync(eng, REQ)
    assert isinstance(failed.error, allm.AdapterError) and failed.error.retry_after_ms == 2000
    assert threaded_emulator.posts() == 3


def test_subscribe_and_dispose_from_other_threads(threaded_emulator: ProviderEmulator) -> None:
    n = 4
    threaded_emulator.enqueue(*[Reply(text="one two three", stall_after=2) for _ in range(n)])
    eng = openai_engine(threaded_emulator)
    firsts = [threading.Event() for _ in range(n)]

    def subscribe(i: int) -> Any:
        return allm.stream_generate(eng, REQ).subscribe(on_next=lambda e: firsts[i].set())

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        subscriptions = list(pool.map(subscribe, range(n)))
        assert all(first.wait(2.0) for first in firsts)
        disposed_at = time.monotonic()
        list(pool.map(lambda s: s.dispose(), reversed(subscriptions)))  # disposed by other threads
        threaded_emulator.wait_until(lambda: len(threaded_emulator.disconnects) == n, 2.0)
        assert max(d.time for d in threaded_emulator.disconnects) - disposed_at < DISPOSE_BUDGET

        results = list(pool.map(lambda _: allm.generate_sync(eng, REQ), range(n)))
    assert [r.output_text for r in results] == ["sync hello"] * n
    assert threaded_emulator.posts() == 2 * n
