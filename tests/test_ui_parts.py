"""What a browser sends back besides text: image files, and the provider data of reasoning
and tool calls that a follow-up request needs.

Unit tests pin ``messages_from_ai_sdk`` and the stream's ``providerMetadata``; the exchange
tests run the handler over real HTTP against the provider emulator for the four real APIs.
The emulator validates follow-ups as the real API does, so a reply to the thread rebuilt
from the browser's messages means the rebuilt request was valid.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from helpers import EMULATED_KEY, thinking_engine
from reactivex import operators as ops
from ui_support import (
    EXPECTED_IMAGE,
    PNG,
    PNG_URL,
    REDACTED,
    SENT_IMAGE,
    SIGNED,
    SIGNED_CALL,
    SIGNED_SCRIPT,
    assert_continues_signed,
    assert_restored,
    serving,
    ui_message,
)

import rx_allm as allm
from rx_allm.errors import ValidationError
from rx_allm.testing import ProviderEmulator, Reply, ToolCallSpec, fake_engine
from rx_allm.ui import ai_sdk_frames, ai_sdk_handler, messages_from_ai_sdk
from rx_allm.ui._encoder import error_text

PROVIDERS = ("openai", "responses", "anthropic", "gemini")


def user_parts(*parts: dict[str, Any], role: str = "user") -> dict[str, Any]:
    return {"id": "c", "messages": [{"id": "u1", "role": role, "parts": list(parts)}]}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def file(media_type: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "file", "mediaType": media_type, "url": url, **extra}


def refusal_of(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        messages_from_ai_sdk(body)
    assert caught.value.reason == "invalid_request"
    return error_text(caught.value)  # the line a refused request answers with


# -- files ------------------------------------------------------------------------------------------
def test_a_user_file_part_becomes_an_image_part_in_order() -> None:
    octet = f"data:application/octet-stream;base64,{PNG}"  # the part's mediaType names the image
    body = user_parts(
        text("Compare "),
        file("image/png", octet, filename="a.png"),
        text("with"),
        file("IMAGE/JPEG", "https://example.com/b.jpg"),
    )
    (message,) = messages_from_ai_sdk(body).messages
    assert message.role == "user"
    assert message.content == [
        {"type": "text", "text": "Compare "},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "text", "text": "with"},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
    ]
    assert message.text == "Compare with"
    assert messages_from_ai_sdk(user_parts(text("hi"))).messages[0].content == "hi"  # text stays a string


@pytest.mark.parametrize(
    ("part", "why"),
    [
        (
            file("application/pdf", "data:application/pdf;base64,JVBERi0="),
            "messages.0.parts.1.mediaType: cannot send a file of type application/pdf to the model: "
            "images only (image/png, image/jpeg, image/gif, image/webp)",
        ),
        (
            file("image/svg+xml", "https://example.com/a.svg"),
            "messages.0.parts.1.mediaType: cannot send a file of type image/svg+xml to the model: "
            "images only (image/png, image/jpeg, image/gif, image/webp)",
        ),
        (
            file("image/png", "blob:http://localhost/1234"),
            "messages.0.parts.1.url: a blob: URL cannot be sent: data:, http: or https: only",
        ),
        (file("image/png", "data:image/png,%89PNG"), "messages.0.parts.1.url: not a base64 data: URL"),
        (
            file("image/png", "data:image/png;base64,not base64!"),
            "messages.0.parts.1.url: not a base64 data: URL",
        ),
        ({"type": "file", "url": PNG_URL}, "messages.0.parts.1.mediaType: missing"),
    ],
)
def test_a_file_the_library_cannot_send_is_refused_naming_it(part: dict[str, Any], why: str) -> None:
    assert refusal_of(user_parts(text("look"), part)) == f"invalid_request: {why}"


def test_a_file_in_a_system_message_is_refused() -> None:
    why = refusal_of(user_parts(text("rules"), file("image/png", PNG_URL), role="system"))
    assert why == "invalid_request: messages.0.parts.1: file parts are read in user messages only"


# -- provider data out (the stream) and back (the next request) ---------------------------------------


def frames_of(script: list[Any]) -> list[dict[str, Any]]:
    events = allm.stream_chat(fake_engine(script), "hi", include_raw_chunks=True, mode="manual")
    chunks: list[dict[str, Any]] = ai_sdk_frames(events).pipe(ops.to_list()).run()
    return chunks


def test_reasoning_end_and_the_tool_call_carry_what_the_provider_needs_back() -> None:
    chunks = frames_of([("reasoning", SIGNED), ("reasoning", REDACTED), ("tool_call", SIGNED_CALL)])
    reasoning = [(c["type"], c.get("providerMetadata")) for c in chunks if c["type"].startswith("reasoning-")]
    assert reasoning == [
        ("reasoning-start", None),
        ("reasoning-delta", None),
        ("reasoning-end", {"rx_allm": {"signature": "sig-1", "provider": "anthropic"}}),
        # Redacted thinking has no text: its block opens and closes at its end.
        ("reasoning-start", None),
        ("reasoning-end", {"rx_allm": {"redacted": "opaque-data", "provider": "anthropic"}}),
    ]
    (call,) = [c for c in chunks if c["type"] == "tool-input-available"]
    assert call["providerMetadata"] == {"rx_allm": {"thought_signature": "ts-1"}}


def test_a_browser_round_trip_restores_reasoning_and_call_metadata_exactly() -> None:
    answered = ui_message(frames_of(SIGNED_SCRIPT), outputs={"call_1": {"hits": 3}})
    thread = messages_from_ai_sdk({"messages": [user_parts(text("hi"))["messages"][0], answered]})
    assert_restored(thread.messages)


def test_a_steps_data_part_becomes_its_messages_metadata() -> None:
    step = [{"type": "step-start"}, text("Checking."), {"type": "data-rx_allm", "data": {"item_id": "msg_1"}}]
    parts = [*step, {"type": "step-start"}, text("Done.")]
    thread = messages_from_ai_sdk({"messages": [{"id": "a", "role": "assistant", "parts": parts}]})
    assert [(m.text, m.metadata) for m in thread.messages] == [
        ("Checking.", {"item_id": "msg_1"}),
        ("Done.", {}),
    ]
    parts[2] = {"type": "data-rx_allm", "data": ["msg_1"]}
    assert refusal_of({"messages": [{"id": "a", "role": "assistant", "parts": parts}]}) == (
        "invalid_request: messages.0.parts.2.data: not a dict"
    )


def test_reasoning_without_our_provider_data_stays_display_only() -> None:
    parts = [{"type": "step-start"}, {"type": "reasoning", "text": "hm", "providerMetadata": {"other": {}}}]
    parts.append(text("Hi."))
    body = {"messages": [{"id": "a", "role": "assistant", "parts": parts}]}
    assert messages_from_ai_sdk(body).messages[0].reasoning == []


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ({"rx_allm": "sig"}, "messages.0.parts.0.providerMetadata.rx_allm: not a JSON object"),
        (
            {"rx_allm": {"signature": 7}},
            "messages.0.parts.0.providerMetadata.rx_allm.signature: input should be a valid string",
        ),
    ],
)
def test_malformed_provider_data_is_refused(metadata: dict[str, Any], why: str) -> None:
    parts = [{"type": "reasoning", "text": "hm", "providerMetadata": metadata}, text("Hi.")]
    body = {"messages": [{"id": "a", "role": "assistant", "parts": parts}]}
    assert refusal_of(body) == f"invalid_request: {why}"


# -- over HTTP, against the emulator -------------------------------------------------------------------
WEATHER = allm.tool(name="get_weather", description="The weather in a city", schema={"type": "object"})


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with session.post(f"{url}/api/chat", json=body) as response:
        return response.status, await response.read()


def chunks_of(raw: bytes) -> list[dict[str, Any]]:
    frames = [f[len("data: ") :] for f in raw.decode().split("\n\n") if f.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    return [json.loads(f) for f in frames[:-1]]


@contextlib.asynccontextmanager
async def exchange(emulator: ProviderEmulator, provider: str, tools: list[Any]) -> AsyncIterator[str]:
    """``ai_sdk_handler`` for ``provider`` (reasoning on) at ``emulator``, served; yields its URL."""
    app = web.Application()
    app.router.add_post("/api/chat", ai_sdk_handler(thinking_engine(emulator, provider), tools=tools))
    async with serving(app) as url:
        yield url


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_image_from_use_chat_reaches_each_provider_in_its_shape(provider: str) -> None:
    body = user_parts(text("What is this?"), file("image/png", PNG_URL, filename="dot.png"))
    plain = user_parts(file("text/plain", "data:text/plain;base64,aGk="))
    async with (
        ProviderEmulator([Reply(text="A dot.")]) as emulator,
        exchange(emulator, provider, []) as url,
        aiohttp.ClientSession() as session,
    ):
        status, raw = await post(session, url, body)
        refused, why = await post(session, url, plain)
    assert status == 200
    assert "".join(c["delta"] for c in chunks_of(raw) if c["type"] == "text-delta") == "A dot."
    assert emulator.posts() == 1  # the refused request sent nothing upstream
    assert SENT_IMAGE[provider](emulator.requests[0].json) == EXPECTED_IMAGE[provider]
    assert refused == 400
    assert why.decode().startswith(
        "invalid_request: messages.0.parts.0.mediaType: cannot send a file of type"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_reasoning_then_a_client_tool_continues_validly_from_the_browsers_messages(
    provider: str,
) -> None:
    call = ToolCallSpec("get_weather", {"city": "Oslo"})
    # Reasoning, text and a call in one step (Responses: three items, each needed back).
    first = Reply(text="Let me check.", thinking="The user wants weather.", tool_calls=[call])
    question = user_parts(text("Weather in Oslo?"))["messages"][0]
    async with (
        ProviderEmulator([first, Reply(text="Sunny.")]) as emulator,
        exchange(emulator, provider, [WEATHER]) as url,
        aiohttp.ClientSession() as session,
    ):
        status, raw = await post(session, url, {"id": "c", "messages": [question]})
        assert status == 200
        chunks = chunks_of(raw)
        call_id = next(c["toolCallId"] for c in chunks if c["type"] == "tool-input-available")
        # The browser ran the tool; useChat sends the conversation back with its output.
        answered = ui_message(chunks, outputs={call_id: {"conditions": "sunny"}})
        status, raw = await post(session, url, {"id": "c", "messages": [question, answered]})
    assert status == 200, raw
    second = chunks_of(raw)
    assert [c for c in second if c["type"] == "error"] == []  # the emulator would refuse an invalid follow-up
    assert "".join(c["delta"] for c in second if c["type"] == "text-delta") == "Sunny."
    assert emulator.posts() == 2
    assert EMULATED_KEY.encode() not in raw and EMULATED_KEY not in json.dumps(chunks)
    follow_up = emulator.requests[1].json
    assert_continues_signed(provider, follow_up)
