"""The Gemini adapter against the provider emulator (real sockets on 127.0.0.1).

Every ``gemini_*`` wire fixture (CRLF line ends) is served verbatim at several random
chunkings through ``stream_generate`` and ``generate``; scripted replies cover text,
function calls (synthesized ids stay distinct), running usage totals, finish reasons,
blocked prompts, in-band errors and truncation; the request body and headers are
checked on what the emulator received; HTTP faults map to their typed reasons.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import events_of, fixture_bytes, hello, of_type, usage_chunks

import rx_allm as allm
from rx_allm.errors import AdapterError, StreamError
from rx_allm.events import (
    META_NATIVE_FINISH_REASON,
    META_RESPONSE_ID,
    REASONING_COMPLETED,
    REASONING_DELTA,
    THOUGHT_SIGNATURE,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextDelta,
    ToolCallCompleted,
    ToolCallStarted,
)
from rx_allm.models import Reasoning
from rx_allm.providers.gemini import SYNTHETIC_ID_PREFIX, build_body, check_supported
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec
from rx_allm.testing.wire import split_frames

KEY = "AIzaSyTestKeyForTheEmulator_0123456789"
MODEL = "gemini-2.5-flash"
TEXT = "Bonjour ! Ça va ? 👋"
WEATHER = {"city": "Paris", "unit": "celsius"}
SIGNATURE = "CiQB0e2Kb5mX8qR1vT4nL7pW0sZ3cF6hJ9kM2oQ5uY8bE1dG4iA="
CHUNKINGS = [(1, 1), (2, 2), (3, 5), (4, 64), (5, 1024)]  # (seed, max_chunk)


def engine(emu: ProviderEmulator, **opts: Any) -> allm.Engine:
    adapter_opts = {"base_url": emu.base_url("gemini"), "api_key": KEY, **opts}
    return allm.Engine(adapter="gemini", model=MODEL, adapter_opts=adapter_opts)


def tokens(usage: allm.Usage) -> tuple[int | None, ...]:
    return (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens, usage.total_tokens)


def sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks)


def chunk(parts: list[dict[str, Any]], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], **extra}


# -- wire fixtures ------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(("seed", "max_chunk"), CHUNKINGS)
async def test_text_fixture(emulator: ProviderEmulator, seed: int, max_chunk: int) -> None:
    body = fixture_bytes("gemini_text")
    assert b"\r\n" in body
    emulator.enqueue(*[Reply(body=body, rechunk_seed=seed, max_chunk=max_chunk)] * 2)
    events, error = await events_of(engine(emulator))
    assert error is None
    assert isinstance(events[0], MessageStarted)
    assert [e.delta for e in of_type(events, TextDelta)] == ["Bonjour !", " Ça va ? 👋"]
    (usage,) = usage_chunks(events)
    assert tokens(usage) == (9, 32, 24, 41)  # output_tokens includes the 24 thought tokens
    assert usage.cached_input_tokens is None
    done = events[-1]
    assert isinstance(done, MessageCompleted) and isinstance(events[-2], RawChunk)
    assert (done.message.content, done.finish_reason) == (TEXT, "stop")
    assert done.metadata[META_NATIVE_FINISH_REASON] == "STOP"
    assert done.metadata[META_RESPONSE_ID] == "kVqZaN7gK4mW1MkPq8-4uQc"

    response = await allm.generate(engine(emulator), hello())
    assert (response.ok, response.output_text, response.finish_reason) == (True, TEXT, "stop")
    assert tokens(response.usage) == (9, 32, 24, 41)


@pytest.mark.asyncio
@pytest.mark.parametrize(("seed", "max_chunk"), CHUNKINGS)
async def test_function_call_fixture(emulator: ProviderEmulator, seed: int, max_chunk: int) -> None:
    body = fixture_bytes("gemini_function_call")
    emulator.enqueue(*[Reply(body=body, rechunk_seed=seed, max_chunk=max_chunk)] * 2)
    events, error = await events_of(engine(emulator))
    assert error is None
    kinds = [e.type for e in events if isinstance(e, (ToolCallStarted, ToolCallCompleted))]
    assert kinds == ["tool_call_started", "tool_call_completed"] * 2  # back to back, per call
    first, second = of_type(events, ToolCallCompleted)
    assert (first.name, first.arguments) == ("get_weather", WEATHER)
    assert first.metadata == {THOUGHT_SIGNATURE: SIGNATURE}
    assert (second.name, second.arguments) == ("get_local_time", {"timezone": "Europe/Paris"})
    assert second.metadata == {}
    assert json.loads(first.raw_arguments) == WEATHER
    assert first.id != second.id and first.id.startswith(SYNTHETIC_ID_PREFIX)

    response = await allm.generate(engine(emulator), hello())
    assert response.output_text == "Let me check both for you."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", WEATHER),
        ("get_local_time", {"timezone": "Europe/Paris"}),
    ]
    assert response.tool_calls[0].metadata[THOUGHT_SIGNATURE] == SIGNATURE
    assert (response.finish_reason, response.metadata[META_NATIVE_FINISH_REASON]) == ("tool_calls", "STOP")
    assert tokens(response.usage) == (96, 97, 54, 193)


# -- scripted replies ---------------------------------------------------------------
@pytest.mark.asyncio
async def test_scripted_text_and_usage(emulator: ProviderEmulator) -> None:
    usage = {"input_tokens": 30, "output_tokens": 25, "cached_input_tokens": 10, "reasoning_tokens": 5}
    emulator.enqueue(Reply(text="One two three four.", usage=usage))
    events, error = await events_of(engine(emulator))
    assert error is None
    assert "".join(e.delta for e in of_type(events, TextDelta)) == "One two three four."
    (u,) = usage_chunks(events)  # running totals on every chunk, emitted once
    assert (u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_input_tokens) == (30, 25, 5, 10)
    assert u.total_tokens == 55


@pytest.mark.asyncio
async def test_two_calls_to_the_same_function_get_distinct_ids(emulator: ProviderEmulator) -> None:
    calls = [ToolCallSpec("get_weather", {"city": "Paris"}), ToolCallSpec("get_weather", {"city": "Lyon"})]
    emulator.enqueue(Reply(text=[], tool_calls=calls), Reply(text=[], tool_calls=calls))
    first = await allm.generate(engine(emulator), hello())
    second = await allm.generate(engine(emulator), hello())
    ids = [c.id for c in first.tool_calls + second.tool_calls]
    assert len(set(ids)) == 4
    assert [c.arguments for c in first.tool_calls] == [{"city": "Paris"}, {"city": "Lyon"}]
    assert first.finish_reason == "tool_calls"


@pytest.mark.asyncio
async def test_provider_call_ids_are_kept(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="", tool_calls=[ToolCallSpec("lookup", {"q": "x"}, id="fc-7")]))
    response = await allm.generate(engine(emulator), hello())
    assert [(c.id, c.name) for c in response.tool_calls] == [("fc-7", "lookup")]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("length", "length"),  # rendered as MAX_TOKENS
        ("content_filter", "content_filter"),  # SAFETY
        ("RECITATION", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "other"),  # a reply without a usable answer, not a failed request
        ("MISSING_THOUGHT_SIGNATURE", "other"),
        ("OTHER", "other"),
        ("SOMETHING_NEW", "other"),
    ],
)
async def test_finish_reasons(emulator: ProviderEmulator, finish: str, expected: str) -> None:
    emulator.enqueue(Reply(text="partial answer", finish=finish))
    response = await allm.generate(engine(emulator), hello())
    assert (response.ok, response.output_text, response.finish_reason) == (True, "partial answer", expected)
    assert response.metadata[META_NATIVE_FINISH_REASON] in (finish, "MAX_TOKENS", "SAFETY")


@pytest.mark.asyncio
async def test_usage_after_finish_and_partial_usage_chunks(emulator: ProviderEmulator) -> None:
    body = sse(
        chunk([{"text": "Hi"}], usageMetadata={"promptTokenCount": 4, "candidatesTokenCount": 1}),
        chunk([{"text": " there"}], "STOP", usageMetadata={"promptTokenCount": 4}),
        {"usageMetadata": {"candidatesTokenCount": 2, "totalTokenCount": 6, "toolUsePromptTokenCount": 0}},
    )
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(engine(emulator), hello())
    assert (response.output_text, response.finish_reason) == ("Hi there", "stop")
    u = response.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (4, 2, 6)
    assert u.extra == {"toolUsePromptTokenCount": 0}


@pytest.mark.asyncio
async def test_thought_parts_are_not_text(emulator: ProviderEmulator) -> None:
    body = sse(
        chunk([{"text": "Thinking about it.", "thought": True}]),
        chunk([{"text": "Answer.", "thoughtSignature": "sig-1"}], "STOP"),
    )
    emulator.enqueue(Reply(body=body))
    events, error = await events_of(engine(emulator))
    assert error is None
    assert [e.delta for e in of_type(events, TextDelta)] == ["Answer."]
    raw = [e.kind for e in of_type(events, RawChunk)]
    assert raw == [REASONING_DELTA, REASONING_COMPLETED]
    done = events[-1]
    assert isinstance(done, MessageCompleted)
    assert done.message.reasoning == [
        Reasoning(text="Thinking about it.", signature="sig-1", provider="gemini")
    ]


@pytest.mark.asyncio
async def test_blocked_prompt(emulator: ProviderEmulator) -> None:
    body = sse({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}})
    emulator.enqueue(Reply(body=body))
    events, error = await events_of(engine(emulator))
    assert isinstance(error, AdapterError)
    assert (error.reason, error.metadata["block_reason"]) == ("content_filter", "SAFETY")
    assert [type(e) for e in events] == [MessageStarted]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("UNAVAILABLE", "provider_unavailable"),
        ("RESOURCE_EXHAUSTED", "rate_limited"),
        ("INTERNAL", "provider_unavailable"),
    ],
)
async def test_in_band_error(emulator: ProviderEmulator, status: str, reason: str) -> None:
    emulator.enqueue(*[Reply(text="one two three", error_after=2, error_type=status)] * 2)
    events, error = await events_of(engine(emulator))
    assert isinstance(error, AdapterError)
    assert (error.reason, error.metadata["error_type"], error.metadata["in_stream"]) == (reason, status, True)
    assert "".join(e.delta for e in of_type(events, TextDelta)) == "one two"
    response = await allm.generate(engine(emulator), hello())
    assert (response.output_text, response.finish_reason) == ("one two", "error")


@pytest.mark.asyncio
async def test_eof_without_finish_reason_is_truncated(emulator: ProviderEmulator) -> None:
    frames = split_frames(fixture_bytes("gemini_text"))
    emulator.enqueue(Reply(body=b"".join(frames[:-1])))
    events, error = await events_of(engine(emulator))
    assert isinstance(error, StreamError) and error.reason == "truncated"
    assert "".join(e.delta for e in of_type(events, TextDelta)) == TEXT
    assert not of_type(events, MessageCompleted)


# -- the request ----------------------------------------------------------------------
SIGNED = {THOUGHT_SIGNATURE: "s1"}
GOOGLE_ID = {"id": "fc-google"}


@pytest.mark.asyncio
async def test_request_body_and_headers(emulator: ProviderEmulator) -> None:
    prior = allm.assistant(
        "",
        tool_calls=[
            allm.ToolCall(id="rxallm_fc_0_aa", name="get_weather", arguments=WEATHER, metadata=SIGNED),
            allm.ToolCall(id="fc-google", name="get_time", raw_arguments='{"tz": "CET"}'),
        ],
    )
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    declaration = {"name": "get_weather", "parameters": schema, "description": "Weather by city"}
    request = allm.request(
        [
            allm.system("Be brief."),
            allm.system("Answer in French."),
            allm.user("Weather and time in Paris?"),
            prior,
            allm.tool_result("rxallm_fc_0_aa", {"temp": 21}),
            allm.tool_result("fc-google", "12:00"),
            allm.assistant("Il fait 21°C."),
        ],
        tools=[allm.tool(name="get_weather", description="Weather by city", schema=schema)],
        tool_choice="required",
        temperature=0.2,
        max_tokens=300,
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": schema}},
        options={"labels": {"team": "a"}},
    )
    emulator.enqueue(Reply(text="ok"))
    emulator.validate = False  # "s1" is not a signature the emulator issued: only the body is checked here
    thinking = {"thinkingBudget": 128}
    response = await allm.generate(
        engine(emulator), request, top_p=0.9, topK=5, thinking_config=thinking, safety_settings=[]
    )
    assert response.ok
    (sent,) = emulator.requests
    assert sent.path == f"/v1beta/models/{MODEL}:streamGenerateContent" and sent.query == {"alt": "sse"}
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers and "x-api-key" not in sent.headers
    assert sent.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": WEATHER}, "thoughtSignature": "s1"},
                    {"functionCall": {"name": "get_time", "args": {"tz": "CET"}, "id": "fc-google"}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}, **GOOGLE_ID}},
                ],
            },
            {"role": "model", "parts": [{"text": "Il fait 21°C."}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief.\n\nAnswer in French."}]},
        "tools": [{"functionDeclarations": [declaration]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {
            "maxOutputTokens": 300,
            "temperature": 0.2,
            "responseMimeType": "application/json",
            "responseSchema": schema,
            "topP": 0.9,
            "topK": 5,
            "thinkingConfig": thinking,
        },
        "safetySettings": [],
        "labels": {"team": "a"},
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", None),
        ("none", {"functionCallingConfig": {"mode": "NONE"}}),
        ("required", {"functionCallingConfig": {"mode": "ANY"}}),
        ("lookup", {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}}),
        ({"functionCallingConfig": {"mode": "AUTO"}}, {"functionCallingConfig": {"mode": "AUTO"}}),
    ],
)
def test_tool_config(choice: Any, expected: Any) -> None:
    request = allm.request([allm.user("x")], model="m", tool_choice=choice, tools=[allm.tool(name="lookup")])
    assert build_body(request, "m", {}).get("toolConfig") == expected


def test_minimal_body_and_json_object_format() -> None:
    request = allm.request([allm.user("x")], model="m", response_format="json_object")
    body = build_body(request, "m", {"generationConfig": {"seed": 3}})
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "generationConfig": {"responseMimeType": "application/json", "seed": 3},
    }


def test_tool_result_without_a_matching_call() -> None:
    request = allm.request([allm.user("x"), allm.tool_result("nope", "1")], model="m")
    with pytest.raises(AdapterError) as info:
        check_supported(request)
    assert info.value.reason == "invalid_request"
    named = allm.request([allm.user("x"), allm.tool_result("nope", "1", name="f")], model="m")
    check_supported(named)
    assert build_body(named, "m", {})["contents"][1]["parts"][0]["functionResponse"]["name"] == "f"


@pytest.mark.asyncio
async def test_google_env_key_and_models_prefix(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaFromTheEnvironment_0123")
    opts = {"base_url": emulator.base_url("gemini")}
    eng = allm.Engine(adapter="gemini", model=f"models/{MODEL}", adapter_opts=opts)
    emulator.enqueue(Reply(text="ok"))
    assert (await allm.generate(eng, hello())).ok
    sent = emulator.requests[0]
    assert sent.headers["x-goog-api-key"] == "AIzaFromTheEnvironment_0123"
    assert sent.path == f"/v1beta/models/{MODEL}:streamGenerateContent"


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(AdapterError) as info:
        allm.stream_generate(allm.Engine(adapter="gemini", model=MODEL), hello())
    assert info.value.reason == "authentication_failed"
    assert "GEMINI_API_KEY or GOOGLE_API_KEY" in info.value.message


# -- HTTP errors ------------------------------------------------------------------------
def google_error(code: int, status: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message, "status": status}}, indent=2)


CONTEXT = "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, None, "invalid_request"),
        (400, google_error(400, "INVALID_ARGUMENT", CONTEXT), "context_length_exceeded"),
        (401, None, "authentication_failed"),
        (403, None, "authentication_failed"),
        (404, None, "invalid_request"),
        (429, None, "rate_limited"),
        (500, None, "provider_unavailable"),
        (503, None, "provider_unavailable"),
    ],
)
async def test_http_errors(emulator: ProviderEmulator, status: int, body: Any, reason: str) -> None:
    headers = {"x-goog-request-id": "goog-req-42", "Retry-After": "3"}
    emulator.enqueue(Reply(status=status, error_body=body, headers=headers))
    events, error = await events_of(engine(emulator))
    assert events == []
    assert isinstance(error, AdapterError)
    assert (error.reason, error.status, error.provider) == (reason, status, "gemini")
    assert (error.request_id, error.retry_after_ms) == ("goog-req-42", 3000)
    prefix = f"Gemini HTTP {status}: "
    assert error.message.startswith(prefix) and len(error.message) > len(prefix)
    assert error.metadata["error_code"] == str(status)


@pytest.mark.asyncio
async def test_http_error_message_is_redacted(emulator: ProviderEmulator) -> None:
    leak = "API key not valid: AIzaSyLeakedKeyMaterial_abcdefgh. Please pass a valid API key."
    emulator.enqueue(Reply(status=400, error_body=google_error(400, "INVALID_ARGUMENT", leak)))
    response = await allm.generate(engine(emulator), hello())
    error = response.error
    # Gemini answers a bad key with HTTP 400; the message marks it as an authentication failure
    assert isinstance(error, AdapterError) and error.reason == "authentication_failed"
    dumped = json.dumps(error.to_dict())
    assert "LeakedKeyMaterial" not in dumped and KEY not in dumped and "[REDACTED]" in error.message
