"""The aiohttp handlers over real HTTP: a client, the handler's server and the provider emulator,
all on 127.0.0.1. Each test asserts what the emulator saw (POSTs, disconnects)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from helpers import OPENAI_KEY, openai_engine
from ui_support import serving

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec
from rx_allm.ui import ag_ui_handler, ai_sdk_handler
from rx_allm.ui.app import make_chat_app
from rx_allm.ui.serving import start_app, url_of


@allm.tool
def get_weather(city: str) -> dict[str, str]:
    """The weather in a city."""
    return {"city": city, "conditions": "sunny"}


SLOW = Reply(text=" ".join(f"w{i}" for i in range(200)), chunk_delay=0.05)
WAIT = 10.0
UI_BODY = {
    "id": "chat-1",
    "trigger": "submit-message",
    "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hello"}]}],
}
AG_BODY = {
    "threadId": "th-1",
    "runId": "run-1",
    "messages": [{"id": "u1", "role": "user", "content": "Hello"}],
    "tools": [],
    "context": [],
    "state": {},
    "forwardedProps": {},
}


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[ProviderEmulator, str]]:
    async with ProviderEmulator() as emulator:
        engine = openai_engine(emulator, model="gpt-test")
        app = web.Application()
        app.router.add_post("/api/chat", ai_sdk_handler(engine, tools=[get_weather]))
        app.router.add_post("/api/agui", ag_ui_handler(engine, tools=[get_weather]))
        async with serving(app) as url:
            yield emulator, url


def sse_payloads(body: bytes) -> list[Any]:
    out = []
    for frame in body.decode().split("\n\n"):
        if frame.startswith("data: "):
            data = frame[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest.mark.asyncio
async def test_ai_sdk_exchange_streams_text_and_tool_calls(served: tuple[ProviderEmulator, str]) -> None:
    emulator, url = served
    emulator.enqueue(
        Reply(text="Checking.", tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, id="call_9")])
    )
    async with aiohttp.ClientSession() as session, session.post(f"{url}/api/chat", json=UI_BODY) as response:
        assert response.status == 200
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.headers["Content-Type"] == "text/event-stream"
        payloads = sse_payloads(await response.read())
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert chunks[0] == {"type": "start", "messageMetadata": {"provider": "openai", "model": "gpt-test"}}
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert text.startswith("Checking.Hello from the emulator")  # step 1, then step 2 after the tool ran
    available = [c for c in chunks if c["type"] == "tool-input-available"]
    assert available == [
        {
            "type": "tool-input-available",
            "toolCallId": "call_9",
            "toolName": "get_weather",
            "input": {"city": "Oslo"},
        }
    ]
    outputs = [c for c in chunks if c["type"] == "tool-output-available"]
    assert outputs == [
        {
            "type": "tool-output-available",
            "toolCallId": "call_9",
            "output": {"city": "Oslo", "conditions": "sunny"},
        }
    ]
    assert [c["type"] for c in chunks].count("start-step") == 2
    assert [c["type"] for c in chunks].count("finish-step") == 2
    assert chunks[-1]["type"] == "finish" and chunks[-1]["finishReason"] == "stop"
    assert emulator.posts() == 2
    assert emulator.requests[0].json["messages"] == [{"role": "user", "content": "Hello"}]
    assert emulator.requests[1].json["messages"][-1]["role"] == "tool"


@pytest.mark.asyncio
async def test_ag_ui_exchange(served: tuple[ProviderEmulator, str]) -> None:
    emulator, url = served
    emulator.enqueue(Reply(text="Hi there.", usage={"input_tokens": 12, "output_tokens": 8}))
    async with aiohttp.ClientSession() as session, session.post(f"{url}/api/agui", json=AG_BODY) as response:
        assert response.status == 200
        events = sse_payloads(await response.read())
    assert events[0] == {"type": "RUN_STARTED", "threadId": "th-1", "runId": "run-1"}
    assert "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT") == "Hi there."
    assert events[-1]["type"] == "RUN_FINISHED" and events[-1]["usage"][0]["inputTokens"] == 12
    assert events[-1]["usage"][0]["outputTokens"] == 8


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/api/chat", b"not json", "body: not JSON"),
        ("/api/chat", b"[1, 2]", "body: not a JSON object"),
        ("/api/chat", json.dumps({"messages": []}).encode(), "body.messages: empty"),
        (
            "/api/chat",
            json.dumps({"messages": [{"role": "robot", "parts": []}]}).encode(),
            "messages.0.role: unknown role 'robot'",
        ),
        (
            "/api/chat",
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "parts": [{"type": "text", "text": "hi"}]},
                        {
                            "role": "assistant",
                            "parts": [{"type": "tool-x", "state": "output-available", "output": 1}],
                        },
                    ]
                }
            ).encode(),
            "messages.1.parts.0.toolCallId: missing",
        ),
        ("/api/agui", json.dumps({"runId": "r", "messages": []}).encode(), "body.threadId: missing"),
        (
            "/api/agui",
            json.dumps(
                {"threadId": "t", "runId": "r", "messages": [{"role": "wizard", "content": "x"}]}
            ).encode(),
            "messages.0.role: unknown role 'wizard'",
        ),
    ],
)
async def test_malformed_bodies_are_a_400_with_one_line_and_nothing_sent(
    served: tuple[ProviderEmulator, str], path: str, body: bytes, reason: str
) -> None:
    emulator, url = served
    async with aiohttp.ClientSession() as session, session.post(url + path, data=body) as response:
        assert response.status == 400
        text = await response.text()
    assert text == f"invalid_request: {reason}"
    assert "\n" not in text
    assert emulator.posts() == 0


@pytest.mark.asyncio
async def test_upstream_error_is_the_protocol_error_frame_then_a_clean_end(
    served: tuple[ProviderEmulator, str],
) -> None:
    emulator, url = served
    emulator.enqueue(Reply(text="one two three", error_after=2), Reply(text="one two three", error_after=2))
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/chat", json=UI_BODY) as response:
            payloads = sse_payloads(await response.read())
        async with session.post(f"{url}/api/agui", json=AG_BODY) as response:
            events = sse_payloads(await response.read())
    assert payloads[-1] == "[DONE]"
    assert payloads[-2]["type"] == "error" and payloads[-2]["errorText"].startswith("provider_unavailable: ")
    assert OPENAI_KEY not in json.dumps(payloads)
    assert events[-1]["type"] == "RUN_ERROR" and events[-1]["code"] == "provider_unavailable"


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "body"), [("/api/chat", UI_BODY), ("/api/agui", AG_BODY)])
async def test_client_leaving_cancels_the_provider_request(
    served: tuple[ProviderEmulator, str], path: str, body: dict[str, Any]
) -> None:
    emulator, url = served
    emulator.enqueue(SLOW)
    async with aiohttp.ClientSession() as session:
        response = await session.post(url + path, json=body)
        seen = b""
        async with asyncio.timeout(WAIT):
            while seen.count(b"data: ") < 6:
                seen += await response.content.readany()
        response.close()  # the browser tab goes away
        await emulator.wait_for_disconnects(1, timeout=WAIT)
    assert [d.request_index for d in emulator.disconnects] == [0]
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_ag_ui_client_tools_are_offered_and_a_call_to_one_ends_the_run(
    served: tuple[ProviderEmulator, str],
) -> None:
    emulator, url = served
    emulator.enqueue(
        Reply(text="", tool_calls=[ToolCallSpec("confirm", {"ok": True}, id="call_c")], finish="tool_calls")
    )
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    body = {**AG_BODY, "tools": [{"name": "confirm", "description": "Ask the user", "parameters": schema}]}
    async with aiohttp.ClientSession() as session, session.post(f"{url}/api/agui", json=body) as response:
        events = sse_payloads(await response.read())
    offered = {t["function"]["name"] for t in emulator.requests[0].json["tools"]}
    assert offered == {"get_weather", "confirm"}
    types = [e["type"] for e in events]
    assert "TOOL_CALL_END" in types and "TOOL_CALL_RESULT" not in types  # the client runs it
    assert events[-1]["type"] == "RUN_FINISHED"
    assert events[-1]["outcome"] == {"type": "success", "pendingToolCallIds": ["call_c"]}
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_chat_app_a_closed_request_is_not_a_stop_the_stop_route_is(emulator: ProviderEmulator) -> None:
    emulator.default = SLOW
    app = make_chat_app(openai_engine(emulator, model="gpt-test"))
    body = {**UI_BODY, "id": "chat-9"}
    async with serving(app) as url, aiohttp.ClientSession() as session:
        first = await session.post(f"{url}/api/chat", json=body)
        await read_frames(first, 5)
        first.close()  # a refresh: the page's request goes away
        async with session.get(f"{url}/api/chat/chat-9") as history:
            assert (await history.json())["messages"] == body["messages"]
        follow = await session.get(f"{url}/api/chat/chat-9/stream")
        replayed = await read_frames(follow, 12)
        assert replayed.startswith(b'data: {"type":"start","messageId":"msg-')
        assert emulator.posts() == 1 and emulator.disconnects == []
        async with session.post(f"{url}/api/chat/chat-9/stop") as stopped:
            assert stopped.status == 204
        await emulator.wait_for_disconnects(1, timeout=WAIT)
        rest = await asyncio.wait_for(follow.read(), WAIT)
        assert b'"type":"abort"' in rest and rest.endswith(b"data: [DONE]\n\n")
        async with session.get(f"{url}/api/chat/nobody/stream") as none:
            assert none.status == 204
    assert emulator.posts() == 1


async def read_frames(response: aiohttp.ClientResponse, count: int) -> bytes:
    seen = b""
    async with asyncio.timeout(WAIT):
        while seen.count(b"data: ") < count:
            seen += await response.content.readany()
    return seen


@pytest.mark.asyncio
async def test_anthropic_thinking_streams_as_reasoning_before_the_text(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(thinking="Weighing the options.", text="Pick B."))
    engine = allm.Engine(
        adapter="anthropic",
        adapter_opts={"base_url": emulator.base_url("anthropic"), "api_key": "sk-ant-test-0123456789"},
        model="claude-test",
    )
    app = web.Application()
    app.router.add_post("/api/chat", ai_sdk_handler(engine))
    async with (
        serving(app) as url,
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/chat", json=UI_BODY) as response,
    ):
        chunks = sse_payloads(await response.read())[:-1]
    kinds = [c["type"] for c in chunks]
    assert kinds.index("reasoning-end") < kinds.index("text-start")
    assert "".join(c["delta"] for c in chunks if c["type"] == "reasoning-delta") == "Weighing the options."
    assert "".join(c["delta"] for c in chunks if c["type"] == "text-delta") == "Pick B."
    assert chunks[0]["messageMetadata"] == {"provider": "anthropic", "model": "claude-test"}


@pytest.mark.asyncio
async def test_chat_app_shutting_the_server_down_cancels_running_replies(emulator: ProviderEmulator) -> None:
    emulator.default = SLOW
    app = make_chat_app(openai_engine(emulator, model="gpt-test"))
    async with aiohttp.ClientSession() as session:
        runner = await start_app(app)
        try:
            reply = await session.post(f"{url_of(runner)}api/chat", json={**UI_BODY, "id": "chat-down"})
            await read_frames(reply, 5)
        finally:
            await runner.cleanup()
        await emulator.wait_for_disconnects(1, timeout=WAIT)
        reply.close()
    assert emulator.posts() == 1
