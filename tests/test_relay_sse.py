"""The relay over SSE (rx_allm.relay.sse) with a real aiohttp server and client on 127.0.0.1:
``id:`` is the entry id, ``Last-Event-ID`` resumes exactly, a client leaving never stops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from helpers import sse_frames
from reactivex.subject import Subject

from rx_allm.errors import AdapterError, RxAllmError, ValidationError
from rx_allm.events import TextDelta
from rx_allm.relay import MemoryRelay, RedisRelay, Relay
from rx_allm.relay.sse import stream_relay
from rx_allm.testing.redis_server import RedisServer

pytestmark = pytest.mark.asyncio
WAIT = 10.0


async def serve(relay: Relay) -> tuple[web.AppRunner, str]:
    async def events(request: web.Request) -> web.StreamResponse:
        return await stream_relay(request, relay, request.match_info["id"])

    app = web.Application()
    app.router.add_get("/events/{id}", events)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest_asyncio.fixture
async def memory_app() -> AsyncIterator[tuple[MemoryRelay, str]]:
    relay = MemoryRelay()
    runner, url = await serve(relay)
    yield relay, url
    await relay.close()
    await runner.cleanup()


async def frames(response: aiohttp.ClientResponse, count: int | None = None) -> list[dict[str, Any]]:
    """SSE frames (``id`` and JSON ``data``) until ``count`` frames or the end of the body."""
    raw = await sse_frames(response, lambda got: count is not None and len(got) >= count, WAIT)
    return [{"id": f["id"], "data": json.loads(f["data"])} for f in raw]


def push(source: Subject[Any], *deltas: str) -> None:
    for delta in deltas:
        source.on_next(TextDelta(delta=delta))


async def test_a_refresh_resumes_after_the_last_event_id_and_never_stops_the_generation(
    memory_app: tuple[MemoryRelay, str],
) -> None:
    relay, url = memory_app
    source: Subject[Any] = Subject()
    assert await relay.start("chat-1", source)
    push(source, "a", "b")
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{url}/events/chat-1")
        assert response.status == 200 and response.headers["Content-Type"] == "text/event-stream"
        first = await frames(response, 2)
        response.close()  # the tab reloads
        await asyncio.sleep(0.05)
        assert source.observers  # the generation still runs
        push(source, "c", "d")
        source.on_completed()
        async with http.get(f"{url}/events/chat-1", headers={"Last-Event-ID": first[-1]["id"]}) as again:
            rest = await frames(again)
        async with http.get(f"{url}/events/chat-1") as whole:
            everything = await frames(whole)
    assert [f["data"]["delta"] for f in first] == ["a", "b"]
    assert [f["data"].get("delta") for f in rest] == ["c", "d", None]
    assert rest[-1] == {"id": None, "data": {"type": "done"}}
    assert [f["id"] for f in everything[:-1]] == [f["id"] for f in first + rest[:-1]]


async def test_the_typed_error_is_the_closing_frame(memory_app: tuple[MemoryRelay, str]) -> None:
    relay, url = memory_app
    source: Subject[Any] = Subject()
    await relay.start("chat-2", source)
    push(source, "a")
    failure = AdapterError("provider_unavailable", "overloaded", provider="anthropic", status=529)
    source.on_error(failure)
    async with aiohttp.ClientSession() as http, http.get(f"{url}/events/chat-2") as response:
        got = await frames(response)
    assert got[0]["data"]["delta"] == "a" and got[1]["id"] is None
    assert RxAllmError.from_dict(got[1]["data"]["error"]) == failure


async def test_bad_ids_are_400_and_ids_the_log_refuses_an_error_frame(
    memory_app: tuple[MemoryRelay, str],
) -> None:
    relay, url = memory_app
    for generation_id in ("one", "two"):
        source: Subject[Any] = Subject()
        await relay.start(generation_id, source)
        push(source, "x")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/events/two") as response:
            other_id = (await frames(response, 1))[0]["id"]
        for generation_id, last in [("one", "garbage"), ("b%20d", None)]:
            headers = {"Last-Event-ID": last} if last else {}
            async with http.get(f"{url}/events/{generation_id}", headers=headers) as response:
                assert response.status == 400, (generation_id, last)
                assert (await response.json())["error"]["type"] == "ValidationError"
        for generation_id, last, field in [("nope", None, "generation_id"), ("one", other_id, "after")]:
            headers = {"Last-Event-ID": last} if last else {}
            async with http.get(f"{url}/events/{generation_id}", headers=headers) as response:
                [closing] = await frames(response)
                assert closing["id"] is None and closing["data"]["type"] == "error"
                error = RxAllmError.from_dict(closing["data"]["error"])
                assert isinstance(error, ValidationError) and error.errors[0][0] == field


async def test_the_same_handler_serves_a_redis_relay(redis_server: RedisServer) -> None:
    relay = RedisRelay(redis_server.url, heartbeat_interval=0.1, heartbeat_timeout=0.5)
    runner, url = await serve(relay)
    try:
        source: Subject[Any] = Subject()
        assert await relay.start("chat-r", source)
        async with aiohttp.ClientSession() as http:
            response = await http.get(f"{url}/events/chat-r")
            push(source, "a", "b")
            first = await frames(response, 2)
            response.close()
            push(source, "c")
            source.on_completed()
            await relay.wait("chat-r")
            async with http.get(f"{url}/events/chat-r", headers={"Last-Event-ID": first[0]["id"]}) as again:
                rest = await frames(again)
        assert [f["data"].get("delta") for f in rest] == ["b", "c", None]
    finally:
        await relay.close()
        await runner.cleanup()
