"""AG-UI besides text: a user's images, and the provider data that must come back.

What a provider needs to continue a conversation (a thinking signature, a Gemini thought
signature, a Responses item id) goes out as AG-UI's ``encryptedValue`` (``REASONING_ENCRYPTED_VALUE``),
which the client keeps on the message or tool call and returns; the HTTP tests rebuild what
``@ag-ui/client`` holds (:func:`ui_support.ag_ui_messages`) and send it back to the emulator,
which refuses an invalid follow-up like the real API.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import ui_support as ui
from aiohttp import web
from helpers import thinking_engine
from reactivex import operators as ops

import rx_allm as allm
from rx_allm.errors import ValidationError
from rx_allm.models import Reasoning
from rx_allm.testing import ProviderEmulator, Reply, ToolCallSpec, fake_engine
from rx_allm.ui import ag_ui_frames, ag_ui_handler, messages_from_ag_ui
from rx_allm.ui._encoder import error_text


def run_input(*messages: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"threadId": "th", "runId": "r2", "messages": list(messages), "tools": tools or []}


def asking(*content: dict[str, Any]) -> dict[str, Any]:
    return {"id": "u1", "role": "user", "content": list(content)}


def image(source: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image", "source": source}


def refusal_of(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        messages_from_ag_ui(body)
    return error_text(caught.value)


# -- images ----------------------------------------------------------------------------------------------
def test_user_image_parts_become_image_parts_in_order() -> None:
    body = run_input(
        asking(
            {"type": "text", "text": "Compare "},
            image({"type": "data", "value": ui.PNG, "mimeType": "image/PNG"}),
            {"type": "text", "text": "with"},
            image({"type": "url", "value": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}),
            image({"type": "url", "value": "https://example.com/dog"}),
        )
    )
    (message,) = messages_from_ag_ui(body).thread.messages
    assert message.content == [
        {"type": "text", "text": "Compare "},
        {"type": "image_url", "image_url": {"url": ui.PNG_URL}},
        {"type": "text", "text": "with"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/dog"}},
    ]
    only_text = run_input(asking({"type": "text", "text": "a"}, {"type": "text", "text": "b"}))
    assert messages_from_ag_ui(only_text).thread.messages[0].content == "ab"


@pytest.mark.parametrize(
    ("part", "why"),
    [
        (
            image({"type": "data", "value": "JVBERi0=", "mimeType": "application/pdf"}),
            "messages.0.content.0.source.mimeType: cannot send a file of type application/pdf to the model",
        ),
        (
            image({"type": "url", "value": "data:text/plain;base64,aGk="}),
            "messages.0.content.0.source.mimeType: cannot send a file of type text/plain to the model",
        ),
        (
            image({"type": "data", "value": "not base64!", "mimeType": "image/png"}),
            "messages.0.content.0.source.value: not a base64 data: URL",
        ),
        (
            image({"type": "url", "value": "blob:https://example.com/1", "mimeType": "image/png"}),
            "messages.0.content.0.source.value: a blob: URL cannot be sent",
        ),
        (
            image({"type": "file", "value": "file-abc", "provider": "openai"}),
            "messages.0.content.0.source.type: a file source cannot be sent: data or url sources only",
        ),
        (
            {"type": "audio", "source": {"type": "data", "value": "AAAA", "mimeType": "audio/wav"}},
            "messages.0.content.0.type: cannot send this audio part to the model: images only",
        ),
        (image({"type": "data", "value": ui.PNG}), "messages.0.content.0.source.mimeType: missing"),
    ],
)
def test_what_cannot_be_sent_is_refused_in_one_line(part: dict[str, Any], why: str) -> None:
    refused = refusal_of(run_input(asking(part)))
    assert refused.startswith(f"invalid_request: {why}"), refused
    assert "\n" not in refused


# -- provider data out and back --------------------------------------------------------------------------
def frames_of(script: list[Any]) -> list[dict[str, Any]]:
    events = allm.stream_chat(fake_engine(script), "hi", include_raw_chunks=True, mode="manual")
    chunks: list[dict[str, Any]] = ag_ui_frames(events, thread_id="th", run_id="r1").pipe(ops.to_list()).run()
    return chunks


def kept(chunks: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [
        (c["subtype"], c["entityId"], json.loads(c["encryptedValue"]))
        for c in chunks
        if c["type"] == "REASONING_ENCRYPTED_VALUE"
    ]


def test_reasoning_and_tool_calls_carry_what_the_provider_needs_back() -> None:
    chunks = frames_of([("reasoning", ui.SIGNED), ("reasoning", ui.REDACTED), ("tool_call", ui.SIGNED_CALL)])
    reasoning = [c["messageId"] for c in chunks if c["type"] == "REASONING_MESSAGE_START"]
    assert kept(chunks) == [
        ("message", reasoning[0], {"rx_allm": {"signature": "sig-1", "provider": "anthropic"}}),
        # Redacted thinking has no text: its (empty) reasoning message opens at its end.
        ("message", reasoning[1], {"rx_allm": {"redacted": "opaque-data", "provider": "anthropic"}}),
        ("tool-call", "call_1", {"rx_allm": {"thought_signature": "ts-1"}}),
    ]
    (start,) = [c for c in chunks if c["type"] == "TOOL_CALL_START"]
    assert start["parentMessageId"] == "r1-1-calls"  # one assistant message for the step's calls


def test_a_client_round_trip_restores_reasoning_and_call_metadata_exactly() -> None:
    held = ui.ag_ui_messages(frames_of(ui.SIGNED_SCRIPT))
    assert [m["role"] for m in held] == ["reasoning", "reasoning", "assistant"]
    answer = {"id": "t1", "role": "tool", "toolCallId": "call_1", "content": '{"hits":3}'}
    thread = messages_from_ag_ui(
        run_input({"id": "u1", "role": "user", "content": "hi"}, *held, answer)
    ).thread
    ui.assert_restored(thread.messages)


def test_a_steps_message_metadata_and_trailing_reasoning_come_back() -> None:
    value = json.dumps({"rx_allm": {"item_id": "msg_1"}})
    signed = json.dumps({"rx_allm": {"signature": "s", "provider": "gemini"}})
    body = run_input(
        {"id": "u1", "role": "user", "content": "hi"},
        {"id": "a1", "role": "assistant", "content": "Hello.", "encryptedValue": value},
        # A signature that came after its step's text: its reasoning message follows the text.
        {"id": "r1", "role": "reasoning", "content": "", "encryptedValue": signed},
        {"id": "u2", "role": "user", "content": "again"},
    )
    _, hello, again = messages_from_ag_ui(body).thread.messages
    assert (hello.text, hello.metadata, again.text) == ("Hello.", {"item_id": "msg_1"}, "again")
    assert hello.reasoning == [Reasoning(text="", signature="s", provider="gemini")]


def test_other_encrypted_values_and_reasoning_stay_display_only() -> None:
    body = run_input(
        {"id": "r0", "role": "reasoning", "content": "hm"},
        {"id": "r1", "role": "reasoning", "content": "hm", "encryptedValue": "gAAAAB-opaque"},
        {"id": "r2", "role": "reasoning", "content": "hm", "encryptedValue": '{"other": 1}'},
        {"id": "a1", "role": "assistant", "content": "Hi.", "encryptedValue": "opaque"},
    )
    (message,) = messages_from_ag_ui(body).thread.messages
    assert (message.reasoning, message.metadata) == ([], {})


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('{"rx_allm": "sig"}', "messages.0.encryptedValue.rx_allm: not a JSON object"),
        (
            '{"rx_allm": {"signature": 7}}',
            "messages.0.encryptedValue.rx_allm.signature: input should be a valid string",
        ),
    ],
)
def test_malformed_provider_data_is_refused(value: str, why: str) -> None:
    body = run_input({"id": "r", "role": "reasoning", "content": "hm", "encryptedValue": value})
    assert refusal_of(body) == f"invalid_request: {why}"


# -- over HTTP, against the emulator ---------------------------------------------------------------------
WEATHER = {"name": "get_weather", "description": "The weather in a city", "parameters": {"type": "object"}}
QUESTION = {"id": "u1", "role": "user", "content": "Weather in Oslo?"}


@contextlib.asynccontextmanager
async def exchange(emulator: ProviderEmulator, provider: str) -> AsyncIterator[str]:
    """``ag_ui_handler`` for ``provider`` (reasoning on) at ``emulator``, served; yields its URL."""
    app = web.Application()
    app.router.add_post("/api/agui", ag_ui_handler(thinking_engine(emulator, provider)))
    async with ui.serving(app) as url:
        yield url


async def run(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, list[Any] | str]:
    """POST a ``RunAgentInput``: the status and the events (the refusal's text for a 400)."""
    async with session.post(f"{url}/api/agui", json=body) as response:
        raw = (await response.read()).decode()
    if response.status != 200:
        return response.status, raw
    return 200, [json.loads(f[len("data: ") :]) for f in raw.split("\n\n") if f.startswith("data: ")]


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["anthropic", "gemini", "responses"])
async def test_an_image_from_an_ag_ui_client_reaches_each_provider_in_its_shape(provider: str) -> None:
    photo = image({"type": "data", "value": ui.PNG, "mimeType": "image/png"})
    pdf = {"type": "document", "source": {"type": "data", "value": "JVBERi0=", "mimeType": "application/pdf"}}
    async with (
        ProviderEmulator([Reply(text="A dot.")]) as emulator,
        exchange(emulator, provider) as url,
        aiohttp.ClientSession() as session,
    ):
        status, events = await run(
            session, url, run_input(asking({"type": "text", "text": "What is this?"}, photo))
        )
        refused, why = await run(session, url, run_input(asking(pdf)))
    assert status == 200
    assert "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT") == "A dot."
    assert emulator.posts() == 1  # the refused request sent nothing upstream
    assert ui.SENT_IMAGE[provider](emulator.requests[0].json) == ui.EXPECTED_IMAGE[provider]
    assert (refused, why) == (
        400,
        "invalid_request: messages.0.content.0.type: cannot send this document part to the model: "
        "images only",
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["anthropic", "gemini", "responses"])
async def test_reasoning_then_a_client_tool_continues_validly_from_the_clients_messages(
    provider: str,
) -> None:
    call = ToolCallSpec("get_weather", {"city": "Oslo"})
    first = Reply(text="Let me check.", thinking="The user wants weather.", tool_calls=[call])
    async with (
        ProviderEmulator([first, Reply(text="Sunny.")]) as emulator,
        exchange(emulator, provider) as url,
        aiohttp.ClientSession() as session,
    ):
        status, events = await run(session, url, run_input(QUESTION, tools=[WEATHER]))
        assert status == 200 and isinstance(events, list)
        assert events[-1]["outcome"]["type"] == "success" and events[-1]["outcome"]["pendingToolCallIds"]
        # The client ran the tool; it sends the messages it holds back with the result.
        held = ui.ag_ui_messages(events)
        (call_id,) = events[-1]["outcome"]["pendingToolCallIds"]
        result = {"id": "t1", "role": "tool", "toolCallId": call_id, "content": '{"conditions":"sunny"}'}
        status, second = await run(session, url, run_input(QUESTION, *held, result, tools=[WEATHER]))
    assert status == 200, second
    assert [e for e in second if e["type"] == "RUN_ERROR"] == []  # the emulator refuses an invalid follow-up
    assert "".join(e["delta"] for e in second if e["type"] == "TEXT_MESSAGE_CONTENT") == "Sunny."
    assert emulator.posts() == 2
    follow_up = emulator.requests[1].json
    ui.assert_continues_signed(provider, follow_up)
