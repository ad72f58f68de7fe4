"""Tests of the provider emulator (rx_allm.testing.emulator) and its wire renderers.

The client here is a plain aiohttp.ClientSession plus a tiny local SSE splitter, so these
tests depend on nothing but the emulator itself. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from rx_allm.testing.emulator import Disconnect, ProviderEmulator, RecordedRequest, Reply, ToolCallSpec
from rx_allm.testing.wire import estimate_tokens, render_body, split_frames, split_text

FIXTURES = Path(__file__).parent / "fixtures" / "wire"
TEXT = "Bonjour ! Ça va ? 👋"
ROUTES = {
    "openai": "/v1/chat/completions",
    "responses": "/v1/responses",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
}

Event = tuple[str | None, str]


def parse_sse(raw: bytes) -> list[Event]:
    """(event name, data) per frame; enough SSE for bodies the emulator writes."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    events: list[Event] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events


def payloads(events: list[Event]) -> list[Any]:
    return [json.loads(data) for _, data in events if data != "[DONE]"]


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[ProviderEmulator]:
    async with ProviderEmulator() as emulator:
        yield emulator


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def post(
    session: aiohttp.ClientSession,
    emu: ProviderEmulator,
    provider: str,
    body: Any = None,
    **kwargs: Any,
) -> Any:
    body = {"model": "m-1", "stream": True} if body is None else body
    return session.post(emu.url + ROUTES[provider], json=body, **kwargs)


async def fetch(
    session: aiohttp.ClientSession, emu: ProviderEmulator, provider: str, body: Any = None
) -> bytes:
    async with post(session, emu, provider, body) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw: bytes = await resp.read()
        return raw


async def read_events(resp: aiohttp.ClientResponse, n: int) -> bytes:
    """Read until ``n`` complete frames arrived (bounded)."""
    buf = b""
    async with asyncio.timeout(1):
        while buf.count(b"\n\n") < n:
            buf += await resp.content.readany()
    return buf


# ---- rendering per provider ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_openai_text_with_usage_chunk(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    emu.enqueue(Reply(text=TEXT, usage={"input_tokens": 19, "output_tokens": 9, "cached_input_tokens": 4}))
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True}}
    events = parse_sse(await fetch(session, emu, "openai", body))

    assert all(name is None for name, _ in events)
    assert events[-1] == (None, "[DONE]")
    chunks = payloads(events)
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"].startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-4o-mini" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]) == TEXT
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["usage"] is None for c in chunks[:-1])
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (19, 9, 28)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4


@pytest.mark.asyncio
async def test_openai_usage_only_when_requested(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    chunks = payloads(parse_sse(await fetch(session, emu, "openai")))
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello from the emulator."
    )


@pytest.mark.asyncio
async def test_openai_tool_calls(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    calls = [
        ToolCallSpec("get_weather", {"city": "Paris", "unit": "celsius"}, fragments=4),
        ToolCallSpec("get_local_time", {"timezone": "Europe/Paris"}, id="call_given"),
    ]
    emu.enqueue(Reply(text="", tool_calls=calls))
    chunks = payloads(parse_sse(await fetch(session, emu, "openai")))

    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assembled: dict[int, dict[str, Any]] = {}
    for chunk in chunks[:-1]:
        for tc in chunk["choices"][0]["delta"].get("tool_calls", []):
            slot = assembled.setdefault(tc["index"], {"id": None, "args": "", "fragments": 0})
            if "id" in tc:
                assert slot["id"] is None, "id only on a call's first fragment"
                slot.update(id=tc["id"], name=tc["function"]["name"])
            else:
                slot["fragments"] += 1
            slot["args"] += tc["function"]["arguments"]
    assert assembled[0]["id"].startswith("call_") and assembled[1]["id"] == "call_given"
    assert [json.loads(assembled[i]["args"]) for i in (0, 1)] == [c.arguments for c in calls]
    assert (assembled[0]["name"], assembled[0]["fragments"]) == ("get_weather", 4)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.asyncio
async def test_responses_text_reasoning_and_calls(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    call = ToolCallSpec("get_weather", {"city": "Paris"})
    emu.enqueue(
        Reply(
            text=TEXT,
            tool_calls=[call],
            thinking="Think first.",
            usage={"input_tokens": 14, "output_tokens": 9},
        )
    )
    events = parse_sse(await fetch(session, emu, "responses", {"model": "gpt-4.1-mini", "stream": True}))
    data = payloads(events)

    assert [name for name, _ in events] == [d["type"] for d in data]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert [d["type"] for d in data[:2]] == ["response.created", "response.in_progress"]
    text = "".join(d["delta"] for d in data if d["type"] == "response.output_text.delta")
    summary = "".join(d["delta"] for d in data if d["type"] == "response.reasoning_summary_text.delta")
    assert (text, summary) == (TEXT, "Think first.")
    added = [d["item"] for d in data if d["type"] == "response.output_item.added"]
    assert [i["type"] for i in added] == ["reasoning", "message", "function_call"]
    fc = added[2]
    args = "".join(
        d["delta"]
        for d in data
        if d["type"] == "response.function_call_arguments.delta" and d["item_id"] == fc["id"]
    )
    assert (
        json.loads(args) == call.arguments
        and fc["call_id"].startswith("call_")
        and fc["name"] == "get_weather"
    )
    final = data[-1]
    assert final["type"] == "response.completed" and final["response"]["status"] == "completed"
    assert final["response"]["usage"]["total_tokens"] == 23
    assert [o["id"] for o in final["response"]["output"]] == [i["id"] for i in added]
    assert all(d["response"]["usage"] is None for d in data[:2])


@pytest.mark.asyncio
async def test_anthropic_thinking_text_and_tool_use(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    call = ToolCallSpec("get_weather", {"city": "Paris", "unit": "celsius"}, id="toolu_given")
    emu.enqueue(
        Reply(
            text=TEXT,
            tool_calls=[call],
            thinking="Let me think.",
            usage={"input_tokens": 21, "output_tokens": 12},
        )
    )
    events = parse_sse(await fetch(session, emu, "anthropic", {"model": "claude-x", "stream": True}))
    data = [json.loads(d) for _, d in events]

    assert [name for name, _ in events] == [d["type"] for d in data]
    assert ("ping", '{"type": "ping"}') in events
    assert data[0]["message"]["usage"]["input_tokens"] == 21 and data[0]["message"]["model"] == "claude-x"
    starts = [d for d in data if d["type"] == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [
        (0, "thinking"),
        (1, "text"),
        (2, "tool_use"),
    ]
    assert starts[2]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_given",
        "name": "get_weather",
        "input": {},
    }
    deltas: dict[int, list[dict[str, Any]]] = {}
    for d in data:
        if d["type"] == "content_block_delta":
            deltas.setdefault(d["index"], []).append(d["delta"])
    assert deltas[0][-1]["type"] == "signature_delta" and deltas[0][-1]["signature"]
    assert "".join(x.get("thinking", "") for x in deltas[0]) == "Let me think."
    assert "".join(x["text"] for x in deltas[1]) == TEXT
    assert deltas[2][0] == {"type": "input_json_delta", "partial_json": ""}
    assert json.loads("".join(x["partial_json"] for x in deltas[2])) == call.arguments
    assert [d["type"] for d in data[-2:]] == ["message_delta", "message_stop"]
    assert data[-2]["delta"]["stop_reason"] == "tool_use" and data[-2]["usage"] == {"output_tokens": 12}


@pytest.mark.asyncio
async def test_gemini_crlf_running_usage_and_whole_args(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    calls = [
        ToolCallSpec("get_weather", {"city": "Paris"}),
        ToolCallSpec("get_time", {"tz": "UTC"}, id="fc-1"),
    ]
    emu.enqueue(
        Reply(
            text=TEXT,
            tool_calls=calls,
            usage={"input_tokens": 9, "output_tokens": 32, "reasoning_tokens": 24},
        )
    )
    raw = await fetch(session, emu, "gemini", {"contents": []})
    chunks = payloads(parse_sse(raw))

    assert raw.endswith(b"\r\n\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts) == TEXT
    assert [p["functionCall"] for p in parts if "functionCall" in p] == [
        {"name": "get_weather", "args": {"city": "Paris"}},
        {"name": "get_time", "args": {"tz": "UTC"}, "id": "fc-1"},
    ]
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None] * (len(chunks) - 1) + ["STOP"]
    counts = [c["usageMetadata"]["candidatesTokenCount"] for c in chunks]
    assert counts == sorted(counts) and counts[-1] == 8
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 9,
        "candidatesTokenCount": 8,
        "totalTokenCount": 41,
        "thoughtsTokenCount": 24,
    }
    assert {c["modelVersion"] for c in chunks} == {"gemini-2.5-flash"}
    assert emu.requests[0].provider == "gemini" and emu.requests[0].query == {"alt": "sse"}


@pytest.mark.parametrize(
    ("provider", "finish", "native"),
    [
        ("openai", "length", "length"),
        ("openai", "content_filter", "content_filter"),
        ("anthropic", "stop", "end_turn"),
        ("anthropic", "length", "max_tokens"),
        ("anthropic", "content_filter", "refusal"),
        ("gemini", "length", "MAX_TOKENS"),
        ("gemini", "content_filter", "SAFETY"),
        ("responses", "length", "max_output_tokens"),
        ("responses", "content_filter", "content_filter"),
    ],
)
def test_finish_is_rendered_natively(provider: str, finish: str, native: str) -> None:
    last = payloads(parse_sse(render_body(provider, Reply(finish=finish))))
    if provider == "openai":
        assert last[-1]["choices"][0]["finish_reason"] == native
    elif provider == "anthropic":
        assert last[-2]["delta"]["stop_reason"] == native
    elif provider == "gemini":
        assert last[-1]["candidates"][0]["finishReason"] == native
    else:
        assert last[-1]["type"] == "response.incomplete"
        assert last[-1]["response"]["incomplete_details"] == {"reason": native}
        assert last[-1]["response"]["usage"]["output_tokens"] == estimate_tokens("Hello from the emulator.")


def test_split_helpers() -> None:
    assert split_text("Hello from  the emulator. ") == ["Hello", " from", "  the", " emulator.", " "]
    assert split_text(["a", "", "b"]) == ["a", "", "b"]
    body = (FIXTURES / "gemini_text.sse").read_bytes()
    assert b"".join(split_frames(body)) == body and len(split_frames(body)) == 3
    assert split_frames(b"data: 1\n\ndata: 2") == [b"data: 1\n\n", b"data: 2"]


# ---- verbatim bodies and faults --------------------------------------------------------------


@pytest.mark.asyncio
async def test_fixture_body_served_verbatim(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    fixture = (FIXTURES / "anthropic_text.sse").read_bytes()
    emu.enqueue(Reply(body=fixture))
    assert await fetch(session, emu, "anthropic") == fixture
    assert emu.completed == [0]


@pytest.mark.asyncio
async def test_rechunk_gives_identical_bytes_in_many_chunks(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    fixture = (FIXTURES / "openai_text.sse").read_bytes()
    emu.enqueue(Reply(body=fixture, rechunk_seed=7, max_chunk=48, chunk_delay=0.001))
    async with post(session, emu, "openai") as resp:
        chunks = [chunk async for chunk in resp.content.iter_any()]
    assert b"".join(chunks) == fixture
    assert len(chunks) > 10


@pytest.mark.asyncio
async def test_http_error_with_retry_after(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    emu.enqueue(Reply(status=429, headers={"Retry-After": "2"}))
    async with post(session, emu, "anthropic") as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.headers["request-id"].startswith("req_")
        body = await resp.json()
    assert body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": body["error"]["message"]},
    }


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_anthropic_error_types_per_status(status: int, error_type: str) -> None:
    from rx_allm.testing.wire import error_body

    assert json.loads(error_body("anthropic", status))["error"]["type"] == error_type


@pytest.mark.asyncio
async def test_openai_and_gemini_error_shapes(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    emu.enqueue(Reply(status=400), Reply(status=401), Reply(status=503))
    async with post(session, emu, "openai") as resp:
        error = (await resp.json())["error"]
        assert resp.headers["x-request-id"].startswith("req_")
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("invalid_request_error", "context_length_exceeded")
    key = "sk-test-0123456789wxyz"
    async with post(session, emu, "openai", headers={"Authorization": f"Bearer {key}"}) as resp:
        error = (await resp.json())["error"]
    assert resp.status == 401 and "sk-...wxyz" in error["message"] and key not in error["message"]
    async with post(session, emu, "gemini") as resp:
        text = await resp.text()
    assert resp.status == 503 and text.count("\n") > 3
    assert json.loads(text) == {
        "error": {"code": 503, "message": json.loads(text)["error"]["message"], "status": "UNAVAILABLE"}
    }


@pytest.mark.asyncio
async def test_custom_error_body_and_content_type(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    page = "<html><body>502 Bad Gateway</body></html>"
    emu.enqueue(
        Reply(status=502, error_body=page, content_type="text/html"),
        Reply(status=418, error_body={"error": {"message": "teapot"}}, headers={"x-request-id": "req_mine"}),
        Reply(body=b"<html>captive portal</html>", content_type="text/html"),
    )
    async with post(session, emu, "openai") as resp:
        assert (resp.status, resp.content_type, await resp.text()) == (502, "text/html", page)
    async with post(session, emu, "openai") as resp:
        assert (resp.status, await resp.json(), resp.headers["x-request-id"]) == (
            418,
            {"error": {"message": "teapot"}},
            "req_mine",
        )
    async with post(session, emu, "openai") as resp:
        assert (resp.status, resp.content_type, await resp.read()) == (
            200,
            "text/html",
            b"<html>captive portal</html>",
        )


@pytest.mark.asyncio
async def test_header_delay_records_request_first(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    emu.enqueue(Reply(header_delay=0.2))
    start = time.monotonic()
    task = asyncio.create_task(fetch(session, emu, "openai"))
    async with asyncio.timeout(0.15):
        while emu.posts() == 0:
            await asyncio.sleep(0.005)
    assert not task.done()
    assert b"data: [DONE]" in await task
    assert time.monotonic() - start >= 0.2
    assert emu.requests[0].time - start < 0.15


@pytest.mark.asyncio
async def test_stall_then_client_close_is_seen_promptly(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    emu.enqueue(Reply(stall_after=2))
    resp = await post(session, emu, "openai")
    assert parse_sse(await read_events(resp, 2))[1][1].startswith("{")
    resp.close()
    closed = time.monotonic()
    await emu.wait_for_disconnects(1, timeout=0.5)
    assert emu.disconnects[0].request_index == 0
    assert emu.disconnects[0].time - closed < 0.5  # a bound, not a speed target (benchmarks/ measure it)
    assert emu.completed == []


@pytest.mark.asyncio
async def test_client_giving_up_during_header_delay_is_a_disconnect(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    emu.enqueue(Reply(header_delay=5.0))
    with pytest.raises(asyncio.TimeoutError):
        await fetch_with_timeout(session, emu, 0.1)
    await emu.wait_for_disconnects(1, timeout=0.3)
    assert emu.disconnects == [Disconnect(0, emu.disconnects[0].time)]
    with pytest.raises(TimeoutError):
        await emu.wait_for_disconnects(2, timeout=0.02)


async def fetch_with_timeout(session: aiohttp.ClientSession, emu: ProviderEmulator, timeout: float) -> None:
    async with post(session, emu, "openai", timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        await resp.read()


@pytest.mark.parametrize("provider", ["openai", "responses", "anthropic", "gemini"])
@pytest.mark.asyncio
async def test_error_after(provider: str, emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    error_type = "overloaded_error" if provider == "anthropic" else "server_error"
    emu.enqueue(Reply(error_after=3, error_type=error_type))
    events = parse_sse(await fetch(session, emu, provider))
    assert len(events) == 4
    name, data = events[-1]
    last = json.loads(data)
    if provider == "openai":
        assert (
            name is None
            and last["error"]["type"] == "server_error"
            and set(last["error"]) >= {"code", "param"}
        )
    elif provider == "responses":
        assert (name, last["type"], last["sequence_number"]) == ("response.failed", "response.failed", 3)
        assert last["response"]["status"] == "failed" and last["response"]["error"]["code"] == "server_error"
    elif provider == "anthropic":
        assert (name, last) == (
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    else:
        assert last["error"]["code"] == 500 and last["error"]["status"] == "INTERNAL"


@pytest.mark.asyncio
async def test_truncate_after(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    emu.enqueue(Reply(truncate_after=3))
    events = parse_sse(await fetch(session, emu, "openai"))
    assert len(events) == 3 and (None, "[DONE]") not in events
    assert emu.completed == [0] and emu.disconnects == []


@pytest.mark.asyncio
async def test_malformed_after(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    emu.enqueue(Reply(malformed_after=2))
    events = parse_sse(await fetch(session, emu, "anthropic"))
    assert events[2] == ("content_block_delta", "{not json")
    assert events[-1][0] == "message_stop"
    assert len(events) == len(parse_sse(render_body("anthropic", Reply()))) + 1


@pytest.mark.asyncio
async def test_invalid_utf8_after(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    emu.enqueue(Reply(invalid_utf8_after=1))
    raw = await fetch(session, emu, "openai")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    events = parse_sse(raw)
    assert "\ufffd" in json.loads(events[1][1])["choices"][0]["delta"]["content"]
    assert events[-1] == (None, "[DONE]")


@pytest.mark.asyncio
async def test_reset_after_gives_client_a_connection_error(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    emu.enqueue(Reply(reset_after=2))
    async with post(session, emu, "openai") as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientError):
            await resp.read()
    assert emu.completed == [] and emu.posts() == 1


@pytest.mark.asyncio
async def test_huge_first_delta(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    emu.enqueue(Reply(text="tail", huge_line_bytes=200_000))
    chunks = payloads(parse_sse(await fetch(session, emu, "openai")))
    assert len(chunks[1]["choices"][0]["delta"]["content"].encode()) == 200_000
    assert chunks[2]["choices"][0]["delta"]["content"] == "tail"


# ---- recording, scripting, lifecycle ---------------------------------------------------------


@pytest.mark.asyncio
async def test_requests_are_recorded(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    await fetch(session, emu, "openai", {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]})
    async with post(
        session, emu, "anthropic", headers={"X-Api-Key": "sk-ant-1", "Anthropic-Version": "2023-06-01"}
    ):
        pass
    await fetch(session, emu, "gemini", {"contents": [{"parts": [{"text": "hi"}]}]})
    async with session.post(emu.url + "/v1/responses", data=b"{oops") as resp:
        assert resp.status == 200

    assert [r.provider for r in emu.requests] == ["openai", "anthropic", "gemini", "responses"]
    assert [r.index for r in emu.requests] == [0, 1, 2, 3]
    first, second, third, fourth = emu.requests
    assert isinstance(first, RecordedRequest) and first.path == "/v1/chat/completions"
    assert first.json == {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    assert first.headers["content-type"] == "application/json"
    assert second.headers["x-api-key"] == "sk-ant-1" and second.headers["anthropic-version"] == "2023-06-01"
    assert third.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert fourth.json is None
    assert emu.posts() == 4 and emu.posts("/messages") == 1 and emu.posts(":streamGenerateContent") == 1
    assert first.time <= second.time <= third.time


@pytest.mark.asyncio
async def test_unknown_route_and_method(emu: ProviderEmulator, session: aiohttp.ClientSession) -> None:
    async with session.post(emu.url + "/v2/nope", json={}) as resp:
        assert resp.status == 404 and "error" in await resp.json()
    async with session.get(emu.url + "/v1/messages") as resp:
        assert resp.status == 405 and "error" in await resp.json()
    assert emu.requests == []


@pytest.mark.asyncio
async def test_queue_then_responder_then_default(session: aiohttp.ClientSession) -> None:
    seen: list[int] = []

    def responder(request: RecordedRequest) -> Reply:
        seen.append(request.index)
        return Reply(text=f"responder {request.index}")

    async with ProviderEmulator([Reply(text="queued")], responder=responder) as emu:
        texts = []
        for _ in range(2):
            chunks = payloads(parse_sse(await fetch(session, emu, "openai")))
            texts.append("".join(c["choices"][0]["delta"].get("content") or "" for c in chunks))
    assert texts == ["queued", "responder 1"] and seen == [1]

    async with ProviderEmulator(default=Reply(text="fallback")) as emu:
        emu.enqueue(Reply(text="first"))
        bodies = [await fetch(session, emu, "anthropic") for _ in range(2)]
        assert emu.base_url("openai") == emu.url + "/v1" and emu.base_url("gemini") == emu.url
    assert b"first" in bodies[0] and b"fallback" in bodies[1]


@pytest.mark.asyncio
async def test_stop_is_prompt_with_a_stalled_client(session: aiohttp.ClientSession) -> None:
    emu = ProviderEmulator([Reply(stall_after=1)])
    await emu.start()
    resp = await post(session, emu, "responses")
    try:
        await read_events(resp, 1)
        started = time.monotonic()
        await emu.stop()
        assert time.monotonic() - started < 0.5
        with pytest.raises(aiohttp.ClientError):
            async with asyncio.timeout(0.5):
                await resp.read()
    finally:
        resp.close()
    assert emu.disconnects == [] and emu.completed == []


def test_running_in_a_thread_from_sync_code() -> None:
    emu = ProviderEmulator(default=Reply(text="from a thread"))
    with emu.running():
        request = urllib.request.Request(
            emu.base_url("openai") + "/chat/completions",
            data=json.dumps({"model": "gpt", "stream": True}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            body = resp.read()
        url = emu.url
    assert b"from" in body and body.endswith(b"data: [DONE]\n\n")
    assert emu.posts("/chat/completions") == 1 and emu.completed == [0]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/v1/messages", data=b"{}", timeout=1)


def test_start_in_thread_and_stop_thread_with_a_stalled_request() -> None:
    emu = ProviderEmulator([Reply(stall_after=0)])
    emu.start_in_thread()
    conn = http.client.HTTPConnection(emu.url.removeprefix("http://"), timeout=2)
    try:
        conn.request("POST", "/v1/messages", body=b"{}")
        resp = conn.getresponse()
        assert resp.status == 200 and emu.posts() == 1
        started = time.monotonic()
        emu.stop_thread()
        assert time.monotonic() - started < 0.5
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()
    assert emu.completed == [] and emu.disconnects == []


@pytest.mark.asyncio
async def test_injected_frames_keep_responses_sequence_increasing(
    emu: ProviderEmulator, session: aiohttp.ClientSession
) -> None:
    emu.enqueue(Reply(text=TEXT, invalid_utf8_after=4, malformed_after=5, error_after=7))
    events = parse_sse(await fetch(session, emu, "responses"))
    assert events[6] == ("response.output_text.delta", "{not json")  # counts exclude injected frames
    assert len(events) == 10
    data = [json.loads(d) for _, d in events if d != "{not json"]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert "\ufffd" in data[4]["delta"] and data[-1]["type"] == "response.failed"


@pytest.mark.asyncio
async def test_a_failing_responder_gives_a_500(session: aiohttp.ClientSession) -> None:
    def responder(request: RecordedRequest) -> Reply:
        raise RuntimeError("boom")

    async with ProviderEmulator(responder=responder) as emu:
        async with post(session, emu, "gemini") as resp:
            assert resp.status == 500 and "boom" in (await resp.json())["error"]["message"]
        assert emu.posts() == 1
