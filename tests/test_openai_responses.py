"""OpenAI Responses against the emulator: mapping edge cases (handcrafted bodies) and the request body."""

from __future__ import annotations

import json

import pytest
from helpers import (
    CONVERSATION,
    OPENAI_KEY,
    REQ,
    RESPONSES,
    SCHEMA_FORMAT,
    WEATHER_TOOL,
    openai_engine,
    received,
    sse,
)

import rx_allm as allm
from rx_allm.events import (
    TextDelta,
)
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import record


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
async def test_responses_incomplete_content_filter_is_a_finish_reason(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="Some partial", finish="content_filter"))
    response = await allm.generate(openai_engine(emulator, **RESPONSES), REQ)
    assert response.ok and response.finish_reason == "content_filter"
    assert response.metadata["native_finish_reason"] == "content_filter"


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
    assert [e.delta for e in rec.events if isinstance(e, TextDelta)] == ["Hi"]


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
