"""The Anthropic Messages adapter against the provider emulator (real sockets on 127.0.0.1).

Every ``anthropic_*`` wire fixture is served verbatim at several random chunkings (down
to one byte per read) through ``stream_generate`` and ``generate``; scripted replies
cover text, tool calls, thinking, usage, in-band errors and truncation; the request
body and headers are checked on what the emulator received; HTTP faults map to their
typed reasons with the message redacted and the request id read.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from helpers import events_of, fixture_bytes, hello, of_type, usage_chunks

import rx_allm as allm
from rx_allm.errors import AdapterError, EngineError, StreamError
from rx_allm.events import (
    META_NATIVE_FINISH_REASON,
    META_RESPONSE_ID,
    REASONING_COMPLETED,
    REASONING_DELTA,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.models import Reasoning
from rx_allm.providers.anthropic import build_body
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec
from rx_allm.testing.wire import split_frames

KEY = "sk-ant-api03-TestKeyForEmulator0123456789"
TEXT = "Bonjour ! Ça va ? 👋"
WEATHER = {"city": "Paris", "unit": "celsius"}
# (seed, max_chunk): byte-level splits, small and large reads
CHUNKINGS = [(1, 1), (2, 3), (3, 7), (4, 64), (5, 1024)]
SIGNATURE = (
    "EqQBCkgIBxABGAIiQHk2bq1VxL8cR3n0dJ7Qm9fT4wZs6pYu2Ga5Ke8Ht1Lr0Nc3Vb7Xj9Mq4Wd2Fs8Ap6Oy1Ig5Ue3Tz0Rk7Hn4EgxD2jQ8sLp5"
    "vZ1cX9kYhoMbW9nJ7qR2tF4uP6aE3wIjB8Kd1Yf5Sg9Hm2Lq6Vt0Xz4Nr7Pw3Jc8Ue1Ab5Gh9Ik2Ol6Mn0Qs4Rt8Vw"
)
THINKING = "The user greets me in French. I should answer in French, briefly and warmly."


def engine(emu: ProviderEmulator, **opts: Any) -> allm.Engine:
    return allm.Engine(
        adapter="anthropic",
        model="claude-sonnet-4-5",
        adapter_opts={"base_url": emu.base_url("anthropic"), "api_key": KEY, **opts},
    )


def tokens(usage: allm.Usage) -> tuple[int | None, ...]:
    return (usage.input_tokens, usage.output_tokens, usage.total_tokens)


def frames_without_last(name: str, n: int = 1) -> bytes:
    return b"".join(split_frames(fixture_bytes(name))[:-n])


# -- wire fixtures ------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(("seed", "max_chunk"), CHUNKINGS)
async def test_text_fixture(emulator: ProviderEmulator, seed: int, max_chunk: int) -> None:
    body = fixture_bytes("anthropic_text")
    emulator.enqueue(*[Reply(body=body, rechunk_seed=seed, max_chunk=max_chunk)] * 2)
    events, error = await events_of(engine(emulator))
    assert error is None
    assert isinstance(events[0], MessageStarted)
    assert events[0].metadata[META_RESPONSE_ID] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert [e.delta for e in of_type(events, TextDelta)] == ["Bonjour", " !", " Ça", " va", " ? 👋"]
    assert [e.text for e in of_type(events, TextCompleted)] == [TEXT]
    (usage,) = usage_chunks(events)
    assert tokens(usage) == (21, 12, 33)
    assert usage.extra["uncached_input_tokens"] == 21
    assert [type(e).__name__ for e in events[-2:]] == ["RawChunk", "MessageCompleted"]
    done = events[-1]
    assert isinstance(done, MessageCompleted)
    assert (done.message.content, done.finish_reason) == (TEXT, "stop")
    assert done.metadata[META_NATIVE_FINISH_REASON] == "end_turn"

    response = await allm.generate(engine(emulator), hello())
    assert (response.ok, response.output_text, response.finish_reason) == (True, TEXT, "stop")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 12)


@pytest.mark.asyncio
@pytest.mark.parametrize(("seed", "max_chunk"), CHUNKINGS)
async def test_tool_use_fixture(emulator: ProviderEmulator, seed: int, max_chunk: int) -> None:
    body = fixture_bytes("anthropic_tool_use")
    emulator.enqueue(*[Reply(body=body, rechunk_seed=seed, max_chunk=max_chunk)] * 2)
    events, error = await events_of(engine(emulator))
    assert error is None
    call_id = "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    tool_events = (ToolCallStarted, ToolCallDelta, ToolCallCompleted)
    kinds = [e.type for e in events if isinstance(e, tool_events)]
    assert kinds == ["tool_call_started", *["tool_call_delta"] * 3, "tool_call_completed"]
    assert "".join(e.arguments_delta for e in of_type(events, ToolCallDelta)) == json.dumps(WEATHER)
    (completed,) = of_type(events, ToolCallCompleted)
    assert (completed.id, completed.name, completed.arguments) == (call_id, "get_weather", WEATHER)
    assert len(of_type(events, MessageCompleted)) == 1
    assert events[-1].finish_reason == "tool_calls"  # type: ignore[union-attr]

    response = await allm.generate(engine(emulator), hello())
    assert response.output_text == "I'll check the weather in Paris for you."
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [(call_id, "get_weather", WEATHER)]
    assert response.message.tool_calls == response.tool_calls
    assert response.finish_reason == "tool_calls"
    assert tokens(response.usage) == (412, 68, 480)


@pytest.mark.asyncio
@pytest.mark.parametrize(("seed", "max_chunk"), CHUNKINGS)
async def test_thinking_fixture(emulator: ProviderEmulator, seed: int, max_chunk: int) -> None:
    body = fixture_bytes("anthropic_thinking")
    emulator.enqueue(*[Reply(body=body, rechunk_seed=seed, max_chunk=max_chunk)] * 2)
    events, error = await events_of(engine(emulator))
    assert error is None
    raw = [e for e in of_type(events, RawChunk) if e.kind != "usage"]
    assert [e.kind for e in raw] == [REASONING_DELTA] * 3 + [REASONING_COMPLETED]
    assert "".join(e.data["delta"] for e in raw[:3]) == THINKING
    assert raw[3].data["reasoning"] == {"text": THINKING, "signature": SIGNATURE, "provider": "anthropic"}
    assert "".join(e.delta for e in of_type(events, TextDelta)) == TEXT  # thinking is not text

    response = await allm.generate(engine(emulator), hello())
    assert (response.output_text, response.finish_reason) == (TEXT, "stop")
    assert response.message.reasoning == [Reasoning(text=THINKING, signature=SIGNATURE, provider="anthropic")]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (37, 58)


@pytest.mark.asyncio
@pytest.mark.parametrize(("seed", "max_chunk"), CHUNKINGS)
async def test_overloaded_error_fixture(emulator: ProviderEmulator, seed: int, max_chunk: int) -> None:
    body = fixture_bytes("anthropic_overloaded_error")
    emulator.enqueue(*[Reply(body=body, rechunk_seed=seed, max_chunk=max_chunk)] * 2)
    events, error = await events_of(engine(emulator))
    assert isinstance(error, AdapterError)
    assert (error.reason, error.provider, error.retryable) == ("provider_unavailable", "anthropic", True)
    assert error.metadata["error_type"] == "overloaded_error"
    assert "Overloaded" in error.message
    assert [e.delta for e in of_type(events, TextDelta)] == ["Bonjour", " !"]
    assert not of_type(events, MessageCompleted)

    response = await allm.generate(engine(emulator), hello())
    assert (response.output_text, response.finish_reason) == ("Bonjour !", "error")
    assert isinstance(response.error, AdapterError) and response.error.reason == "provider_unavailable"


# -- scripted replies ---------------------------------------------------------------
@pytest.mark.asyncio
async def test_scripted_text_with_cache_usage(emulator: ProviderEmulator) -> None:
    usage = {"input_tokens": 100, "output_tokens": 20, "cached_input_tokens": 40}
    emulator.enqueue(Reply(text="Hello there, friend.", usage=usage))
    response = await allm.generate(engine(emulator), hello())
    assert (response.output_text, response.finish_reason) == ("Hello there, friend.", "stop")
    u = response.usage
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_input_tokens) == (100, 40, 0)
    assert (u.output_tokens, u.total_tokens, u.extra["uncached_input_tokens"]) == (20, 120, 60)


@pytest.mark.asyncio
async def test_scripted_tool_calls(emulator: ProviderEmulator) -> None:
    calls = [
        ToolCallSpec("get_weather", WEATHER, id="toolu_a", fragments=4),
        ToolCallSpec("get_weather", {"city": "Lyon"}, id="toolu_b", fragments=2),
    ]
    emulator.enqueue(Reply(text="", tool_calls=calls))
    events, error = await events_of(engine(emulator))
    assert error is None
    started = [e.id for e in of_type(events, ToolCallStarted)]
    completed = [(e.id, e.arguments) for e in of_type(events, ToolCallCompleted)]
    assert started == ["toolu_a", "toolu_b"]
    assert completed == [("toolu_a", WEATHER), ("toolu_b", {"city": "Lyon"})]
    for call_id in started:  # started < deltas < completed, per call
        positions = [i for i, e in enumerate(events) if getattr(e, "id", None) == call_id]
        assert isinstance(events[positions[0]], ToolCallStarted)
        assert isinstance(events[positions[-1]], ToolCallCompleted)
    done = events[-1]
    assert isinstance(done, MessageCompleted) and done.finish_reason == "tool_calls"
    assert [c.id for c in done.message.tool_calls] == ["toolu_a", "toolu_b"]


@pytest.mark.asyncio
async def test_scripted_thinking_round_trip(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="42.", thinking="Let me think about it.", finish="length"))
    response = await allm.generate(engine(emulator), hello())
    assert (response.output_text, response.finish_reason) == ("42.", "length")
    (reasoning,) = response.message.reasoning
    assert reasoning.text == "Let me think about it." and (reasoning.signature or "").startswith("Eq")
    block = {"type": "thinking", "thinking": reasoning.text, "signature": reasoning.signature}

    follow_up = allm.request([allm.user("Q?"), response.message, allm.user("And?")])
    emulator.enqueue(Reply(text="ok"))
    await allm.generate(engine(emulator), follow_up)
    sent = emulator.requests[-1].json["messages"][1]
    assert sent == {"role": "assistant", "content": [block, {"type": "text", "text": "42."}]}


@pytest.mark.asyncio
async def test_tool_input_from_block_start_when_no_fragments(emulator: ProviderEmulator) -> None:
    start = {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}}
    block = {"type": "tool_use", "id": "toolu_x", "name": "ping", "input": {"host": "a"}}
    frames = [
        ("message_start", start),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    emulator.enqueue(Reply(body=sse(frames)))
    response = await allm.generate(engine(emulator), hello())
    assert [(c.id, c.arguments) for c in response.tool_calls] == [("toolu_x", {"host": "a"})]
    assert tokens(response.usage) == (3, 2, 5)


def sse(frames: list[tuple[str, Any]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in frames)


@pytest.mark.asyncio
async def test_unknown_event_is_a_raw_chunk(emulator: ProviderEmulator) -> None:
    frames = split_frames(fixture_bytes("anthropic_text"))
    extra = sse([("content_block_magic", {"type": "content_block_magic", "x": 1})])
    emulator.enqueue(Reply(body=b"".join([frames[0], extra, *frames[1:]])))
    events, error = await events_of(engine(emulator))
    assert error is None
    unknown = [e for e in of_type(events, RawChunk) if e.kind == "unknown_event"]
    assert [e.data["event"] for e in unknown] == ["content_block_magic"]
    assert isinstance(events[-1], MessageCompleted) and events[-1].message.content == TEXT


@pytest.mark.asyncio
async def test_eof_without_message_stop_after_stop_reason_completes(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(body=frames_without_last("anthropic_text")))
    response = await allm.generate(engine(emulator), hello())
    assert (response.ok, response.output_text, response.finish_reason) == (True, TEXT, "stop")
    assert response.usage.output_tokens == 12


@pytest.mark.asyncio
@pytest.mark.parametrize("cut", [2, 4])
async def test_eof_before_stop_reason_is_truncated(emulator: ProviderEmulator, cut: int) -> None:
    emulator.enqueue(Reply(body=frames_without_last("anthropic_text", cut)))
    events, error = await events_of(engine(emulator))
    assert isinstance(error, StreamError) and error.reason == "truncated"
    assert not of_type(events, MessageCompleted)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error_type", "reason"),
    [
        ("overloaded_error", "provider_unavailable"),
        ("api_error", "provider_unavailable"),
        ("rate_limit_error", "rate_limited"),
        # the emulator's invalid_request_error says "prompt is too long": the marker wins
        ("invalid_request_error", "context_length_exceeded"),
        ("authentication_error", "authentication_failed"),
        ("permission_error", "authentication_failed"),
        ("request_too_large", "invalid_request"),
        ("timeout_error", "timeout"),
    ],
)
async def test_in_band_error_types(emulator: ProviderEmulator, error_type: str, reason: str) -> None:
    # frames: message_start, block start, ping, "one", " two", ...
    emulator.enqueue(Reply(text="one two three", error_after=5, error_type=error_type))
    events, error = await events_of(engine(emulator))
    assert isinstance(error, AdapterError)
    assert (error.reason, error.metadata["error_type"], error.status) == (reason, error_type, None)
    assert "".join(e.delta for e in of_type(events, TextDelta)) == "one two"


@pytest.mark.asyncio
async def test_malformed_frame(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="a b c", malformed_after=3))
    _, error = await events_of(engine(emulator))
    assert isinstance(error, StreamError) and error.reason == "malformed_event"


# -- the request ----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_request_body_and_headers(emulator: ProviderEmulator) -> None:
    prior = allm.assistant(
        "Checking.",
        tool_calls=[
            allm.ToolCall(id="toolu_1", name="get_weather", arguments=WEATHER),
            allm.ToolCall(id="toolu_2", name="get_time", raw_arguments='{"tz": "CET"}'),
        ],
    )
    request = allm.request(
        [
            allm.system("Be brief."),
            allm.system("Answer in French."),
            allm.user("Weather and time in Paris?"),
            prior,
            allm.tool_result("toolu_1", {"temp": 21}),
            allm.tool_result("toolu_2", "12:00"),
            allm.user("Thanks!"),
        ],
        tools=[allm.tool(name="get_weather", description="Weather by city", schema={"type": "object"})],
        tool_choice="get_weather",
        temperature=0.3,
        options={"metadata": {"user_id": "u-1"}, "top_k": 7},
    )
    emulator.enqueue(Reply(text="ok"))
    response = await allm.generate(engine(emulator), request, thinking={"type": "enabled"}, top_k=3)
    assert response.ok
    (sent,) = emulator.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.json == {
        "model": "claude-sonnet-4-5",
        "system": "Be brief.\n\nAnswer in French.",
        "messages": [
            {"role": "user", "content": "Weather and time in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": WEATHER},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"tz": "CET"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": 21}'},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "12:00"},
                ],
            },
            {"role": "user", "content": "Thanks!"},
        ],
        "max_tokens": 1024,
        "tools": [
            {"name": "get_weather", "input_schema": {"type": "object"}, "description": "Weather by city"}
        ],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "temperature": 0.3,
        "stream": True,
        "thinking": {"type": "enabled"},
        "top_k": 7,  # request.options win over params
        "metadata": {"user_id": "u-1"},
    }


@pytest.mark.asyncio
async def test_version_header_and_max_tokens(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="ok"))
    eng = engine(emulator, anthropic_version="2024-01-01")
    await allm.generate(eng, hello(), max_tokens=77, stop_sequences=["END"])
    sent = emulator.requests[0]
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert (sent.json["max_tokens"], sent.json["stop_sequences"]) == (77, ["END"])
    assert "system" not in sent.json and "tools" not in sent.json and "tool_choice" not in sent.json


PASSED_THROUGH = {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", None),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ("lookup", {"type": "tool", "name": "lookup"}),
        (PASSED_THROUGH, PASSED_THROUGH),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    request = allm.request([allm.user("x")], model="m", tool_choice=choice, tools=[allm.tool(name="lookup")])
    assert build_body(request, "m", {}).get("tool_choice") == expected


@pytest.mark.asyncio
async def test_cold_until_subscribed(emulator: ProviderEmulator) -> None:
    stream = allm.stream_generate(engine(emulator), hello())
    assert emulator.requests == []
    emulator.enqueue(Reply(text="a"), Reply(text="b"))
    first = [e async for e in allm.iterate(stream)]
    second = [e async for e in allm.iterate(stream)]
    assert len(emulator.requests) == 2
    assert first[-1].message.content == "a" and second[-1].message.content == "b"  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_caller_session_is_used_and_left_open(emulator: ProviderEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        emulator.enqueue(Reply(text="ok"))
        response = await allm.generate(engine(emulator, session=session), hello())
        assert response.ok and not session.closed


@pytest.mark.asyncio
async def test_leaving_early_closes_the_connection(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="one two three", stall_after=4))
    async with allm.iterate(allm.stream_generate(engine(emulator), hello())) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    await emulator.wait_for_disconnects(1)
    assert emulator.completed == []


def test_preflight_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    eng = allm.Engine(adapter="anthropic", model="claude")
    with pytest.raises(AdapterError) as missing_key:
        allm.stream_generate(eng, hello())
    assert missing_key.value.reason == "authentication_failed"
    with pytest.raises(EngineError) as missing_model:
        allm.stream_generate(allm.Engine(adapter="anthropic", adapter_opts={"api_key": KEY}), hello())
    assert missing_model.value.reason == "missing_model"
    keyed = allm.Engine(adapter="anthropic", model="claude", adapter_opts={"api_key": KEY})
    with pytest.raises(AdapterError) as unsupported:
        allm.stream_generate(keyed, hello(), response_format="json_object")
    assert unsupported.value.reason == "unsupported_feature"


@pytest.mark.asyncio
async def test_key_from_environment(emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key-0123456789")
    opts = {"base_url": emulator.base_url("anthropic")}
    eng = allm.Engine(adapter="anthropic", model="c", adapter_opts=opts)
    emulator.enqueue(Reply(text="ok"))
    assert (await allm.generate(eng, hello())).ok
    assert emulator.requests[0].headers["x-api-key"] == "env-key-0123456789"


# -- HTTP errors ------------------------------------------------------------------------
def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, None, "context_length_exceeded"),  # "prompt is too long: ..."
        (400, anthropic_error("invalid_request_error", "messages: field required"), "invalid_request"),
        (401, None, "authentication_failed"),
        (403, None, "authentication_failed"),
        (404, None, "invalid_request"),
        (413, None, "invalid_request"),
        (429, None, "rate_limited"),
        (500, None, "provider_unavailable"),
        (503, anthropic_error("api_error", "Service unavailable"), "provider_unavailable"),
        (529, None, "provider_unavailable"),
    ],
)
async def test_http_errors(emulator: ProviderEmulator, status: int, body: Any, reason: str) -> None:
    headers = {"request-id": "req_011CTest", "retry-after": "7"}
    emulator.enqueue(Reply(status=status, error_body=body, headers=headers))
    events, error = await events_of(engine(emulator))
    assert events == []
    assert isinstance(error, AdapterError)
    assert (error.reason, error.status, error.provider) == (reason, status, "anthropic")
    assert error.request_id == "req_011CTest"
    assert error.retry_after_ms == 7000
    assert error.message.startswith(f"Anthropic HTTP {status}: ")
    assert error.metadata["error_type"]


@pytest.mark.asyncio
async def test_http_error_message_is_redacted(emulator: ProviderEmulator) -> None:
    leak = "invalid x-api-key: sk-ant-api03-LeakedKeyMaterial_abcdef"
    emulator.enqueue(Reply(status=401, error_body=anthropic_error("authentication_error", leak)))
    response = await allm.generate(engine(emulator), hello())
    error = response.error
    assert isinstance(error, AdapterError) and error.reason == "authentication_failed"
    dumped = json.dumps(error.to_dict())
    assert "LeakedKeyMaterial" not in dumped and KEY not in dumped and "[REDACTED]" in error.message
