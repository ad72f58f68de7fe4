"""The keep-alive race: a pooled connection the server closed while it sat idle.

The server closes an idle keep-alive connection without having said ``Connection: close``,
and the client takes that connection for its next request before its loop has read the
close (the loop was busy). The transport lets the loop read that close before it takes a
connection, so the request goes out once, on a new connection. A request whose bytes did
reach the server (the server read it, then closed without answering) is never sent again:
it ends with ``AdapterError("network_error")``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from helpers import connections
from raw_http import Conn, RawServer

import rx_allm as allm
from rx_allm._connections import session_for_loop
from rx_allm.testing.recording import record

BODY = (Path(__file__).parent / "fixtures" / "wire" / "openai_text.sse").read_bytes()
WAIT = 10.0


class ThreadedServer:
    """A :class:`RawServer` on its own loop in a daemon thread (the client's loop may block)."""

    def __init__(self, handler: Callable[[Conn], Awaitable[None]]) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = RawServer(handler)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> RawServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self.loop).result(WAIT)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.__aexit__(None, None, None), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


def engine(url: str) -> allm.Engine:
    return allm.Engine(
        adapter="openai",
        model="gpt-4o-mini",
        adapter_opts={"base_url": f"{url}/v1", "api_key": "sk-keepalive-0123456789"},
    )


def req() -> allm.Request:
    return allm.request([allm.user("hi")])


async def answer(conn: Conn) -> None:
    await conn.start_sse()
    await conn.chunk(BODY)
    await conn.end()


async def wait_pooled() -> None:
    session = await session_for_loop()
    for _ in range(2000):
        if connections(session) == (0, 1):
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"the connection was not pooled: {connections(session)}")


@pytest.mark.asyncio
async def test_a_stale_pooled_connection_is_replaced_before_any_byte_is_sent() -> None:
    close_now, closed = threading.Event(), threading.Event()
    requests: list[int] = []  # the connection number of each request received

    async def handler(conn: Conn) -> None:
        number = len(server.conns)
        while await conn.read_request() is not None:
            requests.append(number)
            await answer(conn)
            if number == 1:  # close the first connection while it is idle, on cue, without notice
                while not close_now.is_set():
                    await asyncio.sleep(0.002)
                conn.writer.close()
                await conn.writer.wait_closed()
                closed.set()
                return

    with ThreadedServer(handler) as server:
        first = await record(allm.stream_generate(engine(server.url), req()), WAIT)
        assert first.completed, first.error
        await wait_pooled()
        close_now.set()
        assert closed.wait(WAIT)  # blocks this loop: it cannot read the close before the next request
        second = await record(allm.stream_generate(engine(server.url), req()), WAIT)
    assert second.completed, second.error
    assert requests == [1, 2]  # each request reached the server once; the second on a new connection


@pytest.mark.asyncio
async def test_a_request_the_server_read_is_never_sent_again() -> None:
    requests: list[int] = []

    async def handler(conn: Conn) -> None:
        while await conn.read_request() is not None:
            requests.append(len(requests) + 1)
            if len(requests) == 1:
                await answer(conn)
            else:  # read it, then close without a byte of answer
                return

    async with RawServer(handler) as server:
        first = await record(allm.stream_generate(engine(server.url), req()), WAIT)
        assert first.completed, first.error
        await wait_pooled()
        second = await record(allm.stream_generate(engine(server.url), req()), WAIT)
        third = await record(allm.stream_generate(engine(server.url), req()), WAIT)
    assert isinstance(second.error, allm.AdapterError) and second.error.reason == "network_error"
    assert isinstance(third.error, allm.AdapterError) and third.error.reason == "network_error"
    assert requests == [1, 2, 3]  # one POST per subscription, none repeated
