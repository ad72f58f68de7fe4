"""OpenAI Chat Completions against the emulator: mapping edge cases (handcrafted bodies), the request body."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import (
    CONVERSATION,
    OPENAI_KEY,
    REQ,
    SCHEMA_FORMAT,
    TEXT,
    WEATHER_TOOL,
    assert_success_order,
    chunk,
    fixture_bytes,
    openai_engine,
    received,
    sse,
)

import rx_allm as allm
from rx_allm.events import (
    MessageCompleted,
    TextDelta,
    ToolCallStarted,
)
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import record


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
async def test_chat_content_filter_finishes_with_the_partial_text(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="Some partial", finish="content_filter"))
    rec = await record(allm.stream_generate(openai_engine(emulator), REQ))
    assert rec.error is None and rec.completed
    assert "".join(e.delta for e in rec.events if isinstance(e, TextDelta)) == "Some partial"
    done = rec.events[-1]
    assert isinstance(done, MessageCompleted) and done.finish_reason == "content_filter"
    assert done.message.text == "Some partial"


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
    assert_success_order(rec.events)
    started = [(e.id, e.name) for e in rec.events if isinstance(e, ToolCallStarted)]
    assert started == [("call_late", "late"), ("call_1", "no_id_ever")]
    final = rec.events[-1].message.tool_calls
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
    assert [e.delta for e in rec.events if isinstance(e, TextDelta)] == ["one"]


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
