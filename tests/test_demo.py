"""The demo web back end (rx_allm.demo) over real HTTP: an aiohttp client, the demo server and
the provider emulator, all on 127.0.0.1 and on the test's event loop.

Each test asserts what the emulator saw: how many POSTs arrived and which connections the
client side closed early (``emulator.disconnects``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

import rx_allm as allm
from rx_allm._sse import SSEDecoder
from rx_allm.demo import start, url_of
from rx_allm.testing.emulator import ProviderEmulator, Reply

TEXT = "one two three four five six seven eight"
WORDS = len(TEXT.split())
SLOW = Reply(text=" ".join(f"w{i}" for i in range(200)), chunk_delay=0.05)  # ~10 s unless stopped
WAIT = 10.0  # bound of every wait on the network


class Viewer:
    """One SSE connection to the demo, read frame by frame (payload dicts with their ``id``)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.decoder = SSEDecoder()
        self.pending: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while not self.pending:
                chunk = await self.response.content.readany()
                assert chunk, "the event stream ended without a done/error frame"
                for event in self.decoder.feed(chunk):
                    self.pending.append({**json.loads(event.data), "_id": event.id})
        frame = self.pending.pop(0)
        self.frames.append(frame)
        return frame

    async def until(self, kind: str) -> dict[str, Any]:
        while (frame := await self.next())["type"] != kind:
            assert frame["type"] not in ("done", "error"), frame
        return frame

    async def to_end(self) -> list[dict[str, Any]]:
        while (await self.next())["type"] not in ("done", "error"):
            pass
        return self.frames

    @property
    def text(self) -> str:
        return "".join(f["delta"] for f in self.frames if f["type"] == "text_delta")


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[ProviderEmulator]:
    async with ProviderEmulator(default=Reply(text=TEXT, chunk_delay=0.01)) as emu:
        yield emu


def emulator_engine(emulator: ProviderEmulator) -> allm.Engine:
    return allm.Engine(
        adapter="openai",
        adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "sk-test-demo-key-0000"},
        model="gpt-test",
    )


@pytest_asyncio.fixture
async def demo(emulator: ProviderEmulator) -> AsyncIterator[Demo]:
    runner = await start(emulator_engine(emulator))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield Demo(url_of(runner), session)
    finally:
        await runner.cleanup()


class Demo:
    """The demo's address and a client session, with one method per route."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def create(self, prompt: str = "hello") -> str:
        async with self.session.post(self.url + "api/generations", json={"prompt": prompt}) as response:
            assert response.status == 201, await response.text()
            body = await response.json()
        assert body["state"] == "pending"
        return str(body["id"])

    async def watch(self, generation_id: str, **headers: str) -> Viewer:
        response = await self.session.get(
            self.url + f"api/generations/{generation_id}/events", headers=headers
        )
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return Viewer(response)

    async def status(self, generation_id: str) -> dict[str, Any]:
        async with self.session.get(self.url + f"api/generations/{generation_id}") as response:
            return dict(await response.json())

    async def stop(self, generation_id: str) -> dict[str, Any]:
        async with self.session.post(self.url + f"api/generations/{generation_id}/stop") as response:
            assert response.status == 200
            return dict(await response.json())


async def eventually(check: Any, timeout: float = WAIT) -> None:
    """Wait (bounded) until ``check()`` is true."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


async def watching_slow(demo: Demo, emulator: ProviderEmulator) -> tuple[str, Viewer]:
    """A :data:`SLOW` generation and its one viewer, read up to the first text delta."""
    emulator.default = SLOW
    generation = await demo.create()
    viewer = await demo.watch(generation)
    await viewer.until("text_delta")
    return generation, viewer


# -- the page -------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_page_has_prompt_box_token_view_and_stop_button(demo: Demo) -> None:
    async with demo.session.get(demo.url) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    for marker in ('id="prompt"', 'id="tokens"', 'id="stop"', "new EventSource(", "api/generations"):
        assert marker in page


# -- tokens as SSE --------------------------------------------------------------------
@pytest.mark.asyncio
async def test_tokens_arrive_as_numbered_sse_events_then_done(demo: Demo, emulator: ProviderEmulator) -> None:
    generation = await demo.create("count to eight")
    viewer = await demo.watch(generation)
    frames = await viewer.to_end()

    assert viewer.text == TEXT
    assert [f["type"] for f in frames[:2]] == ["message_started", "text_delta"]
    assert [f["type"] for f in frames[-3:]] == ["raw_chunk", "message_completed", "done"]
    assert frames[-2]["message"]["content"] == TEXT
    assert [f["_id"] for f in frames[:-1]] == [str(i) for i in range(len(frames) - 1)]
    assert len([f for f in frames if f["type"] == "text_delta"]) == WORDS
    assert emulator.posts() == 1
    assert emulator.requests[0].json["messages"][-1] == {"role": "user", "content": "count to eight"}
    assert emulator.disconnects == []
    assert (await demo.status(generation))["state"] == "completed"


@pytest.mark.asyncio
async def test_a_created_generation_sends_nothing_until_watched(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    generation = await demo.create()
    await asyncio.sleep(0.05)  # real I/O: give a wrongly eager request time to arrive
    assert emulator.posts() == 0
    viewer = await demo.watch(generation)
    await viewer.to_end()
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_get_with_a_query_creates_and_streams_in_one_request(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    response = await demo.session.get(demo.url + "api/stream", params={"prompt": "hi there"})
    viewer = Viewer(response)
    first = await viewer.next()
    assert first["type"] == "generation" and first["_id"] is None
    await viewer.to_end()
    assert viewer.text == TEXT
    assert viewer.frames[-1]["type"] == "done"
    assert (await demo.status(first["id"]))["state"] == "completed"
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_last_event_id_resumes_after_that_event(demo: Demo, emulator: ProviderEmulator) -> None:
    generation = await demo.create()
    await (await demo.watch(generation)).to_end()
    resumed = await demo.watch(generation, **{"Last-Event-ID": "3"})
    frames = await resumed.to_end()
    assert frames[0]["_id"] == "4"  # 0: message_started, 1..3: "one", " two", " three"
    assert resumed.text == " four five six seven eight"
    assert emulator.posts() == 1


# -- stop and disconnect --------------------------------------------------------------
@pytest.mark.asyncio
async def test_stop_cancels_the_upstream_request_and_ends_viewers_with_cancelled(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    generation, viewer = await watching_slow(demo, emulator)

    assert await demo.stop(generation) == {"id": generation, "state": "cancelled"}
    error = await viewer.until("error")
    assert error["error"]["type"] == "StreamError" and error["error"]["reason"] == "cancelled"
    await emulator.wait_for_disconnects(1, timeout=WAIT)
    assert [d.request_index for d in emulator.disconnects] == [0]
    assert emulator.completed == []
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_closing_the_only_viewer_cancels_the_upstream_request(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    generation, viewer = await watching_slow(demo, emulator)
    viewer.response.close()  # the tab goes away

    await emulator.wait_for_disconnects(1, timeout=WAIT)
    status = await demo.status(generation)
    assert status["state"] == "cancelled" and status["viewers"] == 0
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_closing_before_the_first_token_cancels_the_request(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    emulator.default = Reply(text="late", header_delay=30.0)
    generation = await demo.create()
    viewer = await demo.watch(generation)
    await eventually(lambda: emulator.posts() == 1)
    viewer.response.close()
    await emulator.wait_for_disconnects(1, timeout=WAIT)
    assert (await demo.status(generation))["state"] == "cancelled"


@pytest.mark.asyncio
async def test_shutting_the_server_down_cancels_running_generations(emulator: ProviderEmulator) -> None:
    emulator.default = SLOW
    async with aiohttp.ClientSession() as session:
        runner = await start(emulator_engine(emulator))
        try:
            demo = Demo(url_of(runner), session)
            viewer = await demo.watch(await demo.create())
            await viewer.until("text_delta")
        finally:
            await runner.cleanup()
        await emulator.wait_for_disconnects(1, timeout=WAIT)
        error = await viewer.until("error")
    assert error["error"]["reason"] == "cancelled"
    assert emulator.posts() == 1


# -- several viewers, one request ------------------------------------------------------
@pytest.mark.asyncio
async def test_two_viewers_of_one_generation_share_one_post(demo: Demo, emulator: ProviderEmulator) -> None:
    generation = await demo.create()
    first, second = await demo.watch(generation), await demo.watch(generation)
    frames_a, frames_b = await asyncio.gather(first.to_end(), second.to_end())

    assert first.text == second.text == TEXT
    assert frames_a == frames_b
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_a_late_viewer_sees_the_text_so_far_then_follows_live(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    emulator.default = Reply(text=TEXT, chunk_delay=0.1)
    generation = await demo.create()
    early = await demo.watch(generation)
    for _ in range(3):
        await early.until("text_delta")
    late = await demo.watch(generation)
    assert (await demo.status(generation))["viewers"] == 2
    await asyncio.gather(early.to_end(), late.to_end())

    assert late.text == early.text == TEXT
    assert late.frames == early.frames
    assert emulator.posts() == 1
    assert emulator.disconnects == []


@pytest.mark.asyncio
async def test_one_viewer_leaving_does_not_stop_the_others(demo: Demo, emulator: ProviderEmulator) -> None:
    emulator.default = Reply(text=TEXT, chunk_delay=0.05)
    generation = await demo.create()
    leaving, staying = await demo.watch(generation), await demo.watch(generation)
    await leaving.until("text_delta")
    leaving.response.close()
    await staying.to_end()

    assert staying.text == TEXT
    assert staying.frames[-1]["type"] == "done"
    await eventually(lambda: emulator.completed == [0])
    assert emulator.disconnects == []
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_a_viewer_after_the_end_gets_the_replay_and_no_new_request(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    generation, viewer = await watching_slow(demo, emulator)
    viewer.response.close()
    await emulator.wait_for_disconnects(1, timeout=WAIT)

    replay = await demo.watch(generation)
    frames = await replay.to_end()
    assert frames[0]["type"] == "message_started"
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["reason"] == "cancelled"
    assert replay.text.startswith("w0")
    assert emulator.posts() == 1  # ref_count would have connected (and POSTed) again


# -- errors ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_typed_http_error_is_forwarded_as_an_error_event(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    emulator.enqueue(Reply(status=429, headers={"Retry-After": "7"}))
    viewer = await demo.watch(await demo.create())
    frames = await viewer.to_end()

    error = frames[-1]["error"]
    assert [f["type"] for f in frames] == ["error"]
    assert (error["type"], error["reason"], error["status"], error["retry_after_ms"]) == (
        "AdapterError",
        "rate_limited",
        429,
        7000,
    )
    assert "sk-test-demo-key-0000" not in json.dumps(frames)
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_a_mid_stream_failure_keeps_the_text_and_ends_with_its_reason(
    demo: Demo, emulator: ProviderEmulator
) -> None:
    emulator.enqueue(Reply(text=TEXT, truncate_after=3))
    viewer = await demo.watch(await demo.create())
    frames = await viewer.to_end()
    assert viewer.text
    assert (frames[-1]["error"]["type"], frames[-1]["error"]["reason"]) == ("StreamError", "truncated")


@pytest.mark.asyncio
async def test_a_refused_call_answers_the_post_with_the_typed_error(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    engine = allm.Engine(adapter="openai", adapter_opts={"base_url": emulator.base_url("openai")}, model="m")
    runner = await start(engine)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url_of(runner) + "api/generations", json={"prompt": "hi"}) as response:
                assert response.status == 500
                error = (await response.json())["error"]
            async with session.get(url_of(runner) + "api/stream", params={"prompt": "hi"}) as response:
                frames = [json.loads(e.data) for e in SSEDecoder().feed(await response.read())]
    finally:
        await runner.cleanup()
    assert (error["type"], error["reason"]) == ("AdapterError", "authentication_failed")
    assert [(f["type"], f["error"]["reason"]) for f in frames] == [("error", "authentication_failed")]
    assert emulator.posts() == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "kwargs"),
    [
        ({"prompt": "   "}, {}),
        ({"no": "prompt"}, {}),
        (None, {"data": b"{not json", "headers": {"Content-Type": "application/json"}}),
        (None, {"data": {"prompt": ""}}),
    ],
)
async def test_a_post_without_a_prompt_is_a_400(
    demo: Demo, emulator: ProviderEmulator, body: Any, kwargs: dict[str, Any]
) -> None:
    async with demo.session.post(demo.url + "api/generations", json=body, **kwargs) as response:
        assert response.status == 400
        assert "message" in (await response.json())["error"]
    assert emulator.posts() == 0


@pytest.mark.asyncio
async def test_a_form_post_creates_a_generation(demo: Demo) -> None:
    async with demo.session.post(demo.url + "api/generations", data={"prompt": "from a form"}) as response:
        assert response.status == 201
        generation = (await response.json())["id"]
    assert (await demo.status(generation))["prompt"] == "from a form"


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["api/generations/nope", "api/generations/nope/events"])
async def test_an_unknown_generation_is_a_404(demo: Demo, path: str) -> None:
    async with demo.session.get(demo.url + path) as response:
        assert response.status == 404
    async with demo.session.post(demo.url + "api/generations/nope/stop") as response:
        assert response.status == 404
