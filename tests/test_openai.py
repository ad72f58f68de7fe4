"""The OpenAI adapter against the provider emulator over real sockets (127.0.0.1): both endpoints.

Every ``openai_*``/``responses_*`` wire fixture served verbatim at several random chunkings
(byte-level splits included) through ``stream_generate`` and ``generate``, scripted replies,
finish reasons, headers, endpoint selection and pre-flight. Endpoint-specific mapping edge
cases and request bodies: ``test_openai_chat.py`` and ``test_openai_responses.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import (
    OPENAI_KEY,
    REQ,
    RESPONSES,
    TEXT,
    assert_success_order,
    fixture_bytes,
    openai_engine,
)

import rx_allm as allm
from rx_allm.events import (
    MessageCompleted,
    RawChunk,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec
from rx_allm.testing.recording import record

# (seed, max_chunk): None serves the fixture in one piece; small max_chunk splits inside UTF-8 characters.
CHUNKINGS = [None, (11, 1), (12, 2), (13, 3), (14, 5), (15, 7), (16, 48)]


def fixture_reply(name: str, chunking: tuple[int, int] | None) -> Reply:
    body = fixture_bytes(name)
    if chunking is None:
        return Reply(body=body)
    seed, max_chunk = chunking
    return Reply(body=body, rechunk_seed=seed, max_chunk=max_chunk)


@dataclass(frozen=True)
class Expected:
    text: str = TEXT
    finish: str = "stop"
    usage: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    adapter_opts: dict[str, Any] = field(default_factory=dict)


WEATHER = {"city": "Paris", "unit": "celsius"}


ZONE = {"timezone": "Europe/Paris"}


ZERO_DETAILS = {"cached_input_tokens": 0, "reasoning_tokens": 0}


SUCCESS_FIXTURES = {
    "openai_text": Expected(),
    "openai_usage_chunk": Expected(
        usage={"input_tokens": 19, "output_tokens": 9, "total_tokens": 28, **ZERO_DETAILS}
    ),
    "openai_tool_calls": Expected(
        text="",
        finish="tool_calls",
        calls=[
            ("call_8Jd2kQ4mWx1vB7nR3tY5pL0a", "get_weather", WEATHER),
            ("call_Zp6Qe3Lr9Tn2Vb8Ks4Hd1Mw7", "get_local_time", ZONE),
        ],
    ),
    "responses_text": Expected(
        usage={"input_tokens": 14, "output_tokens": 9, "total_tokens": 23, **ZERO_DETAILS},
        adapter_opts=RESPONSES,
    ),
    "responses_function_call": Expected(
        text="",
        finish="tool_calls",
        usage={"input_tokens": 118, "output_tokens": 41, "total_tokens": 159, **ZERO_DETAILS},
        calls=[
            ("call_Qm3nR7tV1xZ5bD9fH2jL6pS0", "get_weather", WEATHER),
            ("call_Wk8yA4cE6gI0mO2qU5sY9bF3", "get_local_time", ZONE),
        ],
        adapter_opts=RESPONSES,
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("chunking", CHUNKINGS, ids=str)
@pytest.mark.parametrize("name", sorted(SUCCESS_FIXTURES))
async def test_fixture_streams_and_generates(
    emulator: ProviderEmulator, name: str, chunking: tuple[int, int] | None
) -> None:
    expected = SUCCESS_FIXTURES[name]
    emulator.enqueue(fixture_reply(name, chunking), fixture_reply(name, chunking))
    eng = openai_engine(emulator, **expected.adapter_opts)

    rec = await record(allm.stream_generate(eng, REQ))
    assert rec.completed and rec.error is None and not rec.late
    events = rec.events
    assert_success_order(events)
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == expected.text
    completed = [(e.id, e.name, e.arguments) for e in events if isinstance(e, ToolCallCompleted)]
    assert completed == expected.calls
    assert [(e.id, e.name) for e in events if isinstance(e, ToolCallStarted)] == [
        c[:2] for c in expected.calls
    ]
    last = events[-1]
    assert last.finish_reason == expected.finish
    assert last.message.content == expected.text
    assert [(c.id, c.name, c.arguments) for c in last.message.tool_calls] == expected.calls
    usage = [e.data for e in events if isinstance(e, RawChunk)]
    assert [u.model_dump(exclude_none=True, exclude={"extra"}) for u in usage] == (
        [expected.usage] if expected.usage else []
    )

    response = await allm.generate(eng, REQ)
    assert response.ok and response.output_text == expected.text
    assert response.finish_reason == expected.finish
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == expected.calls
    for call in response.tool_calls:
        assert json.loads(call.raw_arguments) == call.arguments
    assert response.usage.model_dump(exclude_none=True, exclude={"extra"}) == expected.usage
    assert emulator.posts() == 2


ERROR_FIXTURES = {
    "openai_midstream_error": ("Bonjour !", {}),
    "responses_failed": ("Bonjour", RESPONSES),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("chunking", CHUNKINGS, ids=str)
@pytest.mark.parametrize("name", sorted(ERROR_FIXTURES))
async def test_error_fixture_ends_with_typed_error_after_partial_text(
    emulator: ProviderEmulator, name: str, chunking: tuple[int, int] | None
) -> None:
    partial, adapter_opts = ERROR_FIXTURES[name]
    emulator.enqueue(fixture_reply(name, chunking), fixture_reply(name, chunking))
    eng = openai_engine(emulator, **adapter_opts)

    rec = await record(allm.stream_generate(eng, REQ))
    assert isinstance(rec.error, allm.AdapterError) and not rec.completed and not rec.late
    assert rec.error.reason == "provider_unavailable" and rec.error.provider == "openai"
    assert rec.error.metadata["in_stream"] is True and rec.error.retryable
    assert "".join(e.delta for e in rec.events if isinstance(e, TextDelta)) == partial
    assert not any(isinstance(e, MessageCompleted) for e in rec.events)

    response = await allm.generate(eng, REQ)
    assert response.finish_reason == "error" and response.output_text == partial
    assert isinstance(response.error, allm.AdapterError) and response.error.reason == "provider_unavailable"


CALLS = [
    ToolCallSpec("get_weather", {"city": "Zürich", "days": [1, 2]}, id="call_weather_1", fragments=4),
    ToolCallSpec("lookup", {"q": 'a "quoted" value'}, id="call_lookup_2", fragments=2),
]


SCRIPTED_USAGE = {"input_tokens": 40, "output_tokens": 12, "cached_input_tokens": 8, "reasoning_tokens": 5}


EXPECTED_USAGE = allm.Usage(
    input_tokens=40, output_tokens=12, total_tokens=52, cached_input_tokens=8, reasoning_tokens=5
)


@pytest.mark.asyncio
@pytest.mark.parametrize("adapter_opts", [{}, RESPONSES], ids=["chat", "responses"])
async def test_scripted_text_tool_calls_and_usage(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any]
) -> None:
    reply = Reply(
        text="Let me check that. 🌦", tool_calls=CALLS, usage=SCRIPTED_USAGE, rechunk_seed=3, max_chunk=9
    )
    emulator.enqueue(reply, reply)
    eng = openai_engine(emulator, **adapter_opts)

    rec = await record(allm.stream_generate(eng, REQ, include_raw_chunks=True))
    assert rec.completed
    assert_success_order(rec.events)
    deltas = [e for e in rec.events if isinstance(e, ToolCallDelta)]
    assert {e.id for e in deltas} == {"call_weather_1", "call_lookup_2"}
    assert "".join(e.arguments_delta for e in deltas if e.id == "call_lookup_2") == json.dumps(
        CALLS[1].arguments, ensure_ascii=False
    )

    response = await allm.generate(eng, REQ)
    assert response.ok and response.output_text == "Let me check that. 🌦"
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        (c.id, c.name, c.arguments) for c in CALLS
    ]
    assert response.usage.model_copy(update={"extra": {}}) == EXPECTED_USAGE
    assert response.message.tool_calls == response.tool_calls


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("finish", "expected"), [("length", "length"), ("stop", "stop"), ("something_new", "other")]
)
@pytest.mark.parametrize("adapter_opts", [{}, RESPONSES], ids=["chat", "responses"])
async def test_finish_reasons(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any], finish: str, expected: str
) -> None:
    emulator.enqueue(Reply(text="partial answer", finish=finish))
    response = await allm.generate(openai_engine(emulator, **adapter_opts), REQ)
    assert response.ok and response.finish_reason == expected and response.output_text == "partial answer"


@pytest.mark.asyncio
async def test_organization_and_project_headers(emulator: ProviderEmulator) -> None:
    eng = openai_engine(emulator, organization="org-acme", project="proj_1")
    await allm.generate(eng, REQ)
    headers = emulator.requests[0].headers
    assert headers["openai-organization"] == "org-acme" and headers["openai-project"] == "proj_1"
    assert headers["authorization"] == f"Bearer {OPENAI_KEY}"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gpt-4o-mini", "/v1/chat/completions"),
        ("gpt-4.1", "/v1/chat/completions"),
        ("gpt-3.5-turbo", "/v1/chat/completions"),
        ("gpt-5", "/v1/responses"),
        ("gpt-5.1-mini", "/v1/responses"),
        ("o1", "/v1/responses"),
        ("o4-mini", "/v1/responses"),
        ("gpt-6", "/v1/responses"),
        ("gpt-12", "/v1/responses"),
    ],
)
async def test_endpoint_by_model(emulator: ProviderEmulator, model: str, path: str) -> None:
    response = await allm.generate(openai_engine(emulator, model), REQ)
    assert response.ok and response.output_text == "Hello from the emulator."
    assert emulator.requests[0].path == path


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "endpoint", "path"),
    [("gpt-4o", "responses", "/v1/responses"), ("gpt-5", "chat_completions", "/v1/chat/completions")],
)
async def test_endpoint_by_option(emulator: ProviderEmulator, model: str, endpoint: str, path: str) -> None:
    response = await allm.generate(openai_engine(emulator, model, endpoint=endpoint), REQ)
    assert response.ok and emulator.requests[0].path == path
    assert "endpoint" not in emulator.requests[0].json


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("adapter_opts", "options"),
    [
        ({"endpoint": "completions"}, {}),
        ({}, {"n": 2}),
        ({"endpoint": "chat_completions"}, {"reasoning_summary": "auto"}),
    ],
)
async def test_unsupported_combinations_raise_before_any_request(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any], options: dict[str, Any]
) -> None:
    with pytest.raises(allm.AdapterError) as info:
        allm.stream_generate(openai_engine(emulator, **adapter_opts), REQ, **options)
    assert info.value.reason == "unsupported_feature" and info.value.provider == "openai"
    assert emulator.requests == []


def test_image_in_system_message_is_unsupported() -> None:
    req = allm.request(
        [allm.Message(role="system", content=[{"type": "image_url", "image_url": "x"}]), allm.user("hi")]
    )
    eng = allm.Engine(adapter="openai", adapter_opts={"api_key": OPENAI_KEY}, model="gpt-4o")
    with pytest.raises(allm.AdapterError) as info:
        allm.stream_generate(eng, req)
    assert info.value.reason == "unsupported_feature"


def test_missing_key_and_missing_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(allm.AdapterError) as info:
        allm.stream_generate(allm.Engine(adapter="openai", model="gpt-4o"), REQ)
    assert info.value.reason == "authentication_failed"
    with pytest.raises(allm.EngineError) as missing:
        allm.stream_generate(allm.Engine(adapter="openai", adapter_opts={"api_key": OPENAI_KEY}), REQ)
    assert missing.value.reason == "missing_model"


@pytest.mark.asyncio
async def test_key_from_environment_and_call_option(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456")
    eng = allm.Engine(
        adapter="openai", adapter_opts={"base_url": emulator.base_url("openai")}, model="gpt-4o"
    )
    await allm.generate(eng, REQ)
    await allm.generate(eng, REQ, api_key="sk-per-call-654321")
    assert [r.headers["authorization"] for r in emulator.requests] == [
        "Bearer sk-from-env-123456",
        "Bearer sk-per-call-654321",
    ]
