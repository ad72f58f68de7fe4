"""The OpenAI adapter against the provider emulator over real sockets (127.0.0.1).

Covers both endpoints: every ``openai_*``/``responses_*`` wire fixture served verbatim at
several random chunkings (byte-level splits included) through ``stream_generate`` and
``generate``, scripted replies, mapping edge cases (handcrafted bodies), what the emulator
received (body and headers), and endpoint selection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import OPENAI_KEY, fixture_bytes, openai_engine, record

import rx_allm as allm
from rx_allm.events import (
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec

TEXT = "Bonjour ! Ça va ? 👋"
REQ = allm.request([allm.user("hi")])
RESPONSES = {"endpoint": "responses"}
# (seed, max_chunk): None serves the fixture in one piece; small max_chunk splits inside UTF-8 characters.
CHUNKINGS = [None, (11, 1), (12, 2), (13, 3), (14, 5), (15, 7), (16, 48)]


def fixture_reply(name: str, chunking: tuple[int, int] | None) -> Reply:
    body = fixture_bytes(name)
    if chunking is None:
        return Reply(body=body)
    seed, max_chunk = chunking
    return Reply(body=body, rechunk_seed=seed, max_chunk=max_chunk)


def sse(*payloads: dict[str, Any] | str, named: bool = False) -> bytes:
    """A handcrafted SSE body; ``named`` adds an ``event:`` line equal to the payload's type."""
    out = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        name = payload.get("type") if named and isinstance(payload, dict) else None
        out.append((f"event: {name}\n" if name else "") + f"data: {data}\n\n")
    return "".join(out).encode()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice."""
    choice = {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-x", "object": "chat.completion.chunk", "choices": [choice], **extra}


def assert_success_order(events: list[Any]) -> None:
    """message_started first, one message_completed last, usage right before it, calls in order."""
    assert isinstance(events[0], MessageStarted)
    assert isinstance(events[-1], MessageCompleted)
    assert sum(isinstance(e, MessageCompleted) for e in events) == 1
    usage = [i for i, e in enumerate(events) if isinstance(e, RawChunk) and e.kind == "usage"]
    assert usage in ([], [len(events) - 2])
    for call_id in {e.id for e in events if isinstance(e, ToolCallStarted)}:
        kinds = [
            type(e)
            for e in events
            if isinstance(e, (ToolCallStarted, ToolCallDelta, ToolCallCompleted)) and e.id == call_id
        ]
        assert kinds[0] is ToolCallStarted and kinds[-1] is ToolCallCompleted
        assert kinds.count(ToolCallStarted) == kinds.count(ToolCallCompleted) == 1


# -- the wire fixtures ----------------------------------------------------------------
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
    assert rec.completed and rec.error is None and not rec.after_terminal
    events = rec.items
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
    assert isinstance(rec.error, allm.AdapterError) and not rec.completed and not rec.after_terminal
    assert rec.error.reason == "provider_unavailable" and rec.error.provider == "openai"
    assert rec.error.metadata["in_stream"] is True and rec.error.retryable
    assert "".join(e.delta for e in rec.items if isinstance(e, TextDelta)) == partial
    assert not any(isinstance(e, MessageCompleted) for e in rec.items)

    response = await allm.generate(eng, REQ)
    assert response.finish_reason == "error" and response.output_text == partial
    assert isinstance(response.error, allm.AdapterError) and response.error.reason == "provider_unavailable"


# -- scripted replies -----------------------------------------------------------------
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
    assert_success_order(rec.items)
    deltas = [e for e in rec.items if isinstance(e, ToolCallDelta)]
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
async def test_responses_reasoning_summary_lands_in_message_reasoning(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="42.", thinking="Think about it. Then answer."))
    response = await allm.generate(openai_engine(emulator, "o4-mini"), REQ, reasoning_summary="auto")
    assert response.output_text == "42."
    (reasoning,) = response.message.reasoning
    assert (reasoning.text, reasoning.provider) == ("Think about it. Then answer.", "openai")
    assert reasoning.id and reasoning.id.startswith("rs_")
    assert emulator.requests[0].json["reasoning"] == {"summary": "auto"}


@pytest.mark.asyncio
async def test_responses_summary_alias_event_and_parts(emulator: ProviderEmulator) -> None:
    body = sse(
        {"type": "response.reasoning_summary.delta", "item_id": "rs_1", "summary_index": 0, "delta": "One."},
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_1",
            "summary_index": 1,
            "delta": "Two",
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_1",
            "summary_index": 1,
            "delta": ".",
        },
        {"type": "response.completed", "response": {"status": "completed"}},
        named=True,
    )
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(openai_engine(emulator, "gpt-5"), REQ)
    assert response.ok and [r.text for r in response.message.reasoning] == ["One.\n\nTwo."]


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
async def test_chat_content_filter_finishes_with_the_partial_text(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="Some partial", finish="content_filter"))
    rec = await record(allm.stream_generate(openai_engine(emulator), REQ))
    assert rec.error is None and rec.completed
    assert "".join(e.delta for e in rec.items if isinstance(e, TextDelta)) == "Some partial"
    done = rec.items[-1]
    assert isinstance(done, MessageCompleted) and done.finish_reason == "content_filter"
    assert done.message.text == "Some partial"


@pytest.mark.asyncio
async def test_responses_incomplete_content_filter_is_a_finish_reason(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="Some partial", finish="content_filter"))
    response = await allm.generate(openai_engine(emulator, **RESPONSES), REQ)
    assert response.ok and response.finish_reason == "content_filter"
    assert response.metadata["native_finish_reason"] == "content_filter"


# -- Chat Completions mapping edge cases (handcrafted bodies) -----------------------------
@pytest.mark.asyncio
async def test_chat_tolerates_empty_and_null_choices(emulator: ProviderEmulator) -> None:
    body = sse(
        {"id": "x", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]},  # Azure's first chunk
        chunk({"role": "assistant", "content": ""}),
        {"id": "x", "choices": None},
        chunk({"content": "ok"}),
        {"id": "x", "choices": [{"index": 1, "delta": {"content": "other choice"}}]},
        chunk(finish="stop"),
        "[DONE]",
    )
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(openai_engine(emulator), REQ)
    assert response.ok and response.output_text == "ok" and response.finish_reason == "stop"


@pytest.mark.asyncio
async def test_chat_eof_after_finish_reason_without_done_completes(emulator: ProviderEmulator) -> None:
    body = fixture_bytes("openai_text").replace(b"data: [DONE]\n\n", b"")
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(openai_engine(emulator), REQ)
    assert response.ok and response.output_text == TEXT and response.finish_reason == "stop"


def tool_fragment(
    index: int, arguments: str, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    fragment: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        fragment["id"] = call_id
    return chunk({"tool_calls": [fragment]})


@pytest.mark.asyncio
async def test_chat_repeated_id_on_every_fragment_is_not_concatenated(emulator: ProviderEmulator) -> None:
    body = sse(
        tool_fragment(0, "", "call_1", "f"),
        tool_fragment(0, '{"a":', "call_1"),
        tool_fragment(0, " 1}", "call_1", "f"),
        chunk(finish="tool_calls"),
        "[DONE]",
    )
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(openai_engine(emulator), REQ)
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("call_1", "f", {"a": 1})]


@pytest.mark.asyncio
async def test_chat_reused_index_with_a_new_id_is_a_new_call(emulator: ProviderEmulator) -> None:
    body = sse(
        tool_fragment(0, '{"path": "a"}', "call_a", "read"),
        tool_fragment(0, '{"path": "b"}', "call_b", "read"),
        chunk(finish="tool_calls"),
        "[DONE]",
    )
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(openai_engine(emulator), REQ)
    assert [(c.id, c.arguments) for c in response.tool_calls] == [
        ("call_a", {"path": "a"}),
        ("call_b", {"path": "b"}),
    ]


@pytest.mark.asyncio
async def test_chat_call_opens_when_id_and_name_arrive(emulator: ProviderEmulator) -> None:
    body = sse(
        tool_fragment(0, '{"x"'),
        tool_fragment(0, ": 2}", "call_late", "late"),
        tool_fragment(1, "{}", name="no_id_ever"),
        chunk(finish="tool_calls"),
        "[DONE]",
    )
    emulator.enqueue(Reply(body=body))
    rec = await record(allm.stream_generate(openai_engine(emulator), REQ))
    assert rec.completed
    assert_success_order(rec.items)
    started = [(e.id, e.name) for e in rec.items if isinstance(e, ToolCallStarted)]
    assert started == [("call_late", "late"), ("call_1", "no_id_ever")]
    final = rec.items[-1].message.tool_calls
    assert [(c.id, c.arguments) for c in final] == [("call_late", {"x": 2}), ("call_1", {})]


@pytest.mark.asyncio
async def test_chat_legacy_function_call_finish_and_unknown_finish(emulator: ProviderEmulator) -> None:
    body = sse(chunk({"content": "x"}), chunk(finish="function_call"), "[DONE]")
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(openai_engine(emulator), REQ)
    assert response.finish_reason == "tool_calls"
    assert response.metadata["native_finish_reason"] == "function_call"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error_type", "reason"),
    [
        ("server_error", "provider_unavailable"),
        ("rate_limit_exceeded", "rate_limited"),
        ("context_length_exceeded", "context_length_exceeded"),
        ("mystery", "provider_unavailable"),
    ],
)
async def test_chat_in_band_error_types(emulator: ProviderEmulator, error_type: str, reason: str) -> None:
    emulator.enqueue(Reply(text="one two three", error_after=2, error_type=error_type))
    rec = await record(allm.stream_generate(openai_engine(emulator), REQ))
    assert isinstance(rec.error, allm.AdapterError) and rec.error.reason == reason
    assert rec.error.metadata["error_type"] == error_type
    assert [e.delta for e in rec.items if isinstance(e, TextDelta)] == ["one"]


@pytest.mark.asyncio
async def test_chat_in_band_bare_string_error(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(body=sse(chunk({"content": "a"}), {"error": "upstream went away"})))
    rec = await record(allm.stream_generate(openai_engine(emulator), REQ))
    assert isinstance(rec.error, allm.AdapterError) and rec.error.reason == "provider_unavailable"
    assert "upstream went away" in rec.error.message


@pytest.mark.asyncio
async def test_chat_non_object_json_is_malformed_event(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(body=sse(chunk({"content": "a"}), "[1, 2]", "[DONE]")))
    rec = await record(allm.stream_generate(openai_engine(emulator), REQ))
    assert isinstance(rec.error, allm.StreamError) and rec.error.reason == "malformed_event"
    assert rec.error.event_index == 2


# -- Responses mapping edge cases ---------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("rate_limit_exceeded", "rate_limited"),
        ("server_error", "provider_unavailable"),
        ("context_length_exceeded", "context_length_exceeded"),
    ],
)
async def test_responses_error_event(emulator: ProviderEmulator, code: str, reason: str) -> None:
    body = sse(
        {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hi"},
        {"type": "error", "code": code, "message": "went wrong", "param": None, "sequence_number": 3},
        named=True,
    )
    emulator.enqueue(Reply(body=body))
    rec = await record(allm.stream_generate(openai_engine(emulator, **RESPONSES), REQ))
    assert isinstance(rec.error, allm.AdapterError) and rec.error.reason == reason
    assert "went wrong" in rec.error.message
    assert [e.delta for e in rec.items if isinstance(e, TextDelta)] == ["Hi"]


@pytest.mark.asyncio
async def test_responses_dispatches_on_event_name_and_drops_unknown_items(emulator: ProviderEmulator) -> None:
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}
    body = (
        b"event: response.output_item.added\n"
        + f"data: {json.dumps({'output_index': 0, 'item': item})}\n\n".encode()
        + sse(
            {"type": "response.function_call_arguments.delta", "item_id": "fc_unknown", "delta": "zzz"},
            {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"k": '},
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "1}"},
            {"type": "response.some_future_event", "anything": True},
            {"type": "response.completed", "response": {"status": "completed"}},
            named=True,
        )
    )
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(openai_engine(emulator, **RESPONSES), REQ)
    assert response.ok and response.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments, c.raw_arguments) for c in response.tool_calls] == [
        ("call_1", "f", {"k": 1}, '{"k": 1}')
    ]


@pytest.mark.asyncio
async def test_responses_final_arguments_win_over_deltas(emulator: ProviderEmulator) -> None:
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}
    body = sse(
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"broken'},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**item, "arguments": '{"ok": true}'},
        },
        {"type": "response.completed", "response": {"status": "completed"}},
        named=True,
    )
    emulator.enqueue(Reply(body=body))
    response = await allm.generate(openai_engine(emulator, **RESPONSES), REQ)
    assert response.tool_calls[0].arguments == {"ok": True}


# -- what the emulator received ---------------------------------------------------------
WEATHER_TOOL = allm.tool(
    name="get_weather",
    description="Current weather",
    schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PAST_CALL = allm.ToolCall(id="call_9", name="get_weather", arguments={"city": "Paris"})
CONVERSATION = [
    allm.system("Be brief."),
    allm.user("Weather in Paris?"),
    allm.assistant("", tool_calls=[PAST_CALL]),
    allm.tool_result("call_9", {"temp_c": 21}),
    allm.user("Thanks"),
]
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
}


async def received(
    emu: ProviderEmulator, request: allm.Request, model: str = "gpt-4o", **options: Any
) -> Any:
    """Send ``request`` and return the recorded request (body parsed, headers lower-cased)."""
    response = await allm.generate(openai_engine(emu, model), request, **options)
    assert response.ok, response.error
    return emu.requests[-1]


@pytest.mark.asyncio
async def test_chat_request_body(emulator: ProviderEmulator) -> None:
    req = allm.request(
        CONVERSATION,
        tools=[WEATHER_TOOL],
        tool_choice="get_weather",
        response_format=SCHEMA_FORMAT,
        temperature=0.3,
        max_tokens=99,
    )
    sent = await received(emulator, req, top_p=0.5, seed=7, reasoning_effort="low", user="u-1")
    body = sent.json
    assert sent.path == "/v1/chat/completions"
    assert body["model"] == "gpt-4o" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": '{"temp_c": 21}'},
        {"role": "user", "content": "Thanks"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": WEATHER_TOOL.schema_,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == SCHEMA_FORMAT
    assert body["temperature"] == 0.3 and body["max_completion_tokens"] == 99 and "max_tokens" not in body
    assert (body["top_p"], body["seed"], body["reasoning_effort"], body["user"]) == (0.5, 7, "low", "u-1")
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "text/event-stream"
    assert "openai-organization" not in sent.headers


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "field_name"),
    [
        ("gpt-4o-mini", "max_completion_tokens"),
        ("gpt-4.1", "max_completion_tokens"),
        ("o3-mini", "max_completion_tokens"),
        ("gpt-5", "max_completion_tokens"),
        ("gpt-3.5-turbo", "max_tokens"),
        ("gpt-4-turbo", "max_tokens"),
    ],
)
async def test_chat_max_tokens_field_by_model(
    emulator: ProviderEmulator, model: str, field_name: str
) -> None:
    req = allm.request([allm.user("hi")], max_tokens=5)
    sent = await received(emulator, req, model, adapter_opts={"endpoint": "chat_completions"})
    assert sent.json[field_name] == 5
    assert not ({"max_tokens", "max_completion_tokens"} - {field_name}) & set(sent.json)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "allowed_tools", "mode": "auto"}, {"type": "allowed_tools", "mode": "auto"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
async def test_chat_tool_choice(emulator: ProviderEmulator, choice: Any, expected: Any) -> None:
    req = allm.request([allm.user("hi")], tools=[WEATHER_TOOL], tool_choice=choice)
    assert (await received(emulator, req)).json["tool_choice"] == expected


@pytest.mark.asyncio
async def test_chat_response_format_json_object_and_flat_schema(emulator: ProviderEmulator) -> None:
    sent = await received(emulator, allm.request([allm.user("hi")], response_format="json_object"))
    assert sent.json["response_format"] == {"type": "json_object"}
    flat = {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}
    sent = await received(emulator, allm.request([allm.user("hi")], response_format=flat))
    assert sent.json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}},
    }


@pytest.mark.asyncio
async def test_chat_include_usage_override_and_options_win(emulator: ProviderEmulator) -> None:
    req = allm.request(
        [allm.user("hi")],
        temperature=0.2,
        options={"stream_options": {"include_usage": False}, "temperature": 0.9, "top_p": 0.1},
    )
    sent = await received(emulator, req, top_p=0.5, stream_options={"include_obfuscation": False})
    assert sent.json["stream_options"] == {"include_usage": False, "include_obfuscation": False}
    assert sent.json["temperature"] == 0.9 and sent.json["top_p"] == 0.1
    # no usage chunk was asked for
    assert (await allm.generate(openai_engine(emulator), req)).usage == allm.Usage()


@pytest.mark.asyncio
async def test_organization_and_project_headers(emulator: ProviderEmulator) -> None:
    eng = openai_engine(emulator, organization="org-acme", project="proj_1")
    await allm.generate(eng, REQ)
    headers = emulator.requests[0].headers
    assert headers["openai-organization"] == "org-acme" and headers["openai-project"] == "proj_1"
    assert headers["authorization"] == f"Bearer {OPENAI_KEY}"


@pytest.mark.asyncio
async def test_responses_request_body(emulator: ProviderEmulator) -> None:
    flat_schema = {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}
    req = allm.request(
        CONVERSATION,
        tools=[WEATHER_TOOL],
        tool_choice="get_weather",
        response_format=flat_schema,
        temperature=0.3,
        max_tokens=99,
        options={"store": False},
    )
    sent = await received(
        emulator,
        req,
        "gpt-5-mini",
        reasoning_effort="high",
        reasoning_summary="auto",
        verbosity="low",
        top_p=0.5,
    )
    body = sent.json
    assert sent.path == "/v1/responses"
    assert body["model"] == "gpt-5-mini" and body["stream"] is True and "stream_options" not in body
    assert body["instructions"] == "Be brief."
    assert body["input"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "type": "function_call",
            "call_id": "call_9",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_9", "output": '{"temp_c": 21}'},
        {"role": "user", "content": "Thanks"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather",
            "parameters": WEATHER_TOOL.schema_,
        }
    ]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["text"] == {"format": flat_schema, "verbosity": "low"}
    assert body["max_output_tokens"] == 99 and body["temperature"] == 0.3
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["top_p"] == 0.5 and body["store"] is False
    assert not {"reasoning_effort", "reasoning_summary", "verbosity", "max_tokens", "endpoint"} & set(body)
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"


@pytest.mark.asyncio
async def test_responses_nested_schema_and_content_parts(emulator: ProviderEmulator) -> None:
    parts = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]
    req = allm.request([allm.user(parts), allm.assistant("Sure.")], response_format=SCHEMA_FORMAT)
    body = (await received(emulator, req, "gpt-5")).json
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}
    }
    assert body["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Describe"},
                {"type": "input_image", "image_url": "https://x/y.png"},
            ],
        },
        {"role": "assistant", "content": "Sure."},
    ]
    assert "instructions" not in body


# -- endpoint selection and pre-flight ---------------------------------------------------------
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
