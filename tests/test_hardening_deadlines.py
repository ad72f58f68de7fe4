"""Deadlines and loop shutdown: every stream ends, whatever the server or the caller does.

* ``total_timeout`` bounds a whole stream: a server that trickles one SSE comment at a time
  (each within ``stream_timeout``) would otherwise hold the stream forever.
* timeouts must be finite positive numbers: ``inf``, ``nan``, negatives are refused.
* ``asyncio.run()`` returning while a stream is in flight cancels the stream's task: the
  subscriber gets ``StreamError("cancelled")`` instead of no terminal at all.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from raw_http import Conn, RawServer

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import record

KEY = "sk-deadlines-0123456789"
WAIT = 20.0


def engine(base_url: str) -> allm.Engine:
    return allm.Engine(
        adapter="openai", model="gpt-4o-mini", adapter_opts={"base_url": base_url, "api_key": KEY}
    )


def req() -> allm.Request:
    return allm.request([allm.user("hi")])


async def trickle(conn: Conn) -> None:
    """One keep-alive comment every 20 ms, forever (until the client goes away)."""
    if await conn.read_request() is None:
        return
    await conn.start_sse()
    await conn.chunk(b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n')
    while True:
        await conn.chunk(b": keep-alive\n\n")
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_total_timeout_ends_a_trickling_stream() -> None:
    async with RawServer(trickle) as server:
        events = allm.stream_generate(
            engine(f"{server.url}/v1"), req(), stream_timeout=5.0, total_timeout=0.3
        )
        rec = await record(events, WAIT)
    assert isinstance(rec.error, allm.AdapterError), rec.error
    assert rec.error.reason == "timeout"
    assert "total_timeout" in rec.error.message
    assert [e.type for e in rec.events] == ["message_started", "text_delta"]


@pytest.mark.asyncio
async def test_total_timeout_also_bounds_the_wait_for_headers(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(header_delay=5.0))
    events = allm.stream_generate(engine(emulator.base_url("openai")), req(), total_timeout=0.2)
    rec = await record(events, WAIT)
    assert isinstance(rec.error, allm.AdapterError) and rec.error.reason == "timeout"
    assert "total_timeout" in rec.error.message


@pytest.mark.parametrize("name", ["request_timeout", "stream_timeout", "total_timeout"])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("inf"), "must_be_finite"),
        (float("nan"), "must_be_finite"),
        (-1.0, "must_be_positive"),
        (0, "must_be_positive"),
        ("10", "must_be_positive"),
        (True, "must_be_positive"),
    ],
)
def test_timeouts_must_be_finite_and_positive(name: str, value: Any, problem: str) -> None:
    with pytest.raises(allm.ValidationError) as info:
        allm.stream_generate(engine("http://127.0.0.1:9/v1"), req(), **{name: value})
    assert info.value.errors == [(name, problem)]


def test_total_timeout_none_is_the_default_and_accepted() -> None:
    allm.stream_generate(engine("http://127.0.0.1:9/v1"), req(), total_timeout=None)


def test_asyncio_run_ending_mid_stream_delivers_cancelled() -> None:
    notifications: list[Any] = []

    async def main(url: str) -> None:
        started = asyncio.Event()

        def on_next(event: allm.Event) -> None:
            notifications.append(event.type)
            started.set()

        allm.stream_generate(engine(url), req()).subscribe(
            on_next=on_next,
            on_error=notifications.append,
            on_completed=lambda: notifications.append("completed"),
        )
        await started.wait()
        # returning now: asyncio.run cancels the stream's task and closes the loop

    with ProviderEmulator(default=Reply(text="one two three", stall_after=2)).running() as emulator:
        thread = threading.Thread(target=lambda: asyncio.run(main(emulator.base_url("openai"))), daemon=True)
        thread.start()
        thread.join(WAIT)
        assert not thread.is_alive()
    errors = [n for n in notifications if isinstance(n, Exception)]
    assert len(errors) == 1, notifications
    assert isinstance(errors[0], allm.StreamError) and errors[0].reason == "cancelled"
    assert "completed" not in notifications
    assert notifications[-1] is errors[0]
