"""Helpers of the browser-protocol tests: the emulated model they talk to, and serving an app."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

import rx_allm as allm
from rx_allm.cli import demo_reply, last_user_text
from rx_allm.models import Message, Reasoning
from rx_allm.testing import fake_engine
from rx_allm.testing.emulator import RecordedRequest, Reply
from rx_allm.ui.serving import start_app, url_of

#: The first bytes of a PNG file, base64, and as a data: URL.
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").decode()
PNG_URL = f"data:image/png;base64,{PNG}"
#: Where each API's request body has the user's content, and the image in its shape.
SENT_IMAGE: dict[str, Callable[[Any], Any]] = {
    "openai": lambda body: body["messages"][-1]["content"][1],
    "responses": lambda body: body["input"][-1]["content"][1],
    "anthropic": lambda body: body["messages"][-1]["content"][1],
    "gemini": lambda body: body["contents"][-1]["parts"][1],
}
EXPECTED_IMAGE = {
    "openai": {"type": "image_url", "image_url": {"url": PNG_URL}},
    "responses": {"type": "input_image", "image_url": PNG_URL},
    "anthropic": {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    "gemini": {"inlineData": {"mimeType": "image/png", "data": PNG}},
}

#: Provider data our streams send along: signed and redacted thinking, a thought-signed call.
SIGNED = {"text": "Think.", "signature": "sig-1", "provider": "anthropic"}
REDACTED = {"redacted": "opaque-data", "provider": "anthropic"}
SIGNED_CALL = {
    "id": "call_1",
    "name": "lookup",
    "arguments": {"q": "rx"},
    "metadata": {"thought_signature": "ts-1"},
}
#: A reply (to "hi") that reasons, signed then redacted, says "Looking." and calls lookup.
SIGNED_SCRIPT = [
    ("reasoning", SIGNED),
    ("reasoning", REDACTED),
    ("text", "Looking."),
    ("tool_call", SIGNED_CALL),
]


def assert_restored(messages: list[Message]) -> None:
    """``messages`` (rebuilt from what a client sent back: "hi", the :data:`SIGNED_SCRIPT` reply,
    the call's result ``{"hits":3}``) hold the provider data exactly as the in-process chat does."""
    direct = asyncio.run(allm.chat(fake_engine(SIGNED_SCRIPT), "hi", mode="manual"))
    _, assistant, result = messages
    streamed = direct.thread.messages[1]
    assert assistant.reasoning == streamed.reasoning == [Reasoning(**SIGNED), Reasoning(**REDACTED)]
    assert (
        assistant.tool_calls[0].metadata == streamed.tool_calls[0].metadata == {"thought_signature": "ts-1"}
    )
    assert (assistant.text, result.tool_call_id, result.text) == ("Looking.", "call_1", '{"hits":3}')


LONG = Reply(text=" ".join(f"token{i}" for i in range(300)), chunk_delay=0.05)  # ~15 s unless stopped


def answer(sent: RecordedRequest, chunk_delay: float = 0.0) -> Reply:
    """``rx-allm serve``'s emulated model (demo tool calls, then answers), plus two test prompts:
    one containing "story" gets a long reply, one containing "fail" breaks after two deltas."""
    prompt = last_user_text(sent.json)
    if "story" in prompt and sent.json["messages"][-1]["role"] == "user":
        return LONG
    if "fail" in prompt:
        return Reply(text="This reply will not finish.", error_after=2)
    reply: Reply = demo_reply(sent.json, chunk_delay=chunk_delay)
    return reply


def assert_continues_signed(provider: str, follow_up: dict[str, Any]) -> None:
    """``follow_up`` (the request after a reply that reasoned, said "Let me check." and called a
    tool) gives the provider back what it issued."""
    if provider == "anthropic":
        blocks = follow_up["messages"][1]["content"]
        assert [b["type"] for b in blocks] == ["thinking", "text", "tool_use"]
        assert blocks[0]["thinking"] == "The user wants weather." and blocks[0]["signature"]
        assert follow_up["thinking"]["type"] == "enabled"  # kept: the turn it continues is signed
    if provider == "gemini":
        call = follow_up["contents"][1]["parts"][-1]
        assert call["thoughtSignature"] != "skip_thought_signature_validator"  # the one Gemini issued
    if provider == "responses":
        kinds = [item.get("type", "message") for item in follow_up["input"]]
        assert kinds == ["message", "reasoning", "message", "function_call", "function_call_output"]
        assert follow_up["input"][2]["id"]  # the message item the reasoning item precedes


def ui_message(chunks: list[dict[str, Any]], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The assistant UIMessage ``useChat`` assembles from our ``chunks`` (the kinds our streams
    send), with ``outputs`` (``{toolCallId: output}``) given to the calls the browser ran."""
    parts: list[dict[str, Any]] = []
    open_parts: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        kind, metadata = chunk["type"], chunk.get("providerMetadata")
        if kind == "start-step":
            parts.append({"type": "step-start"})
        elif kind in ("text-start", "reasoning-start"):
            open_parts[chunk["id"]] = {"type": kind.split("-")[0], "text": "", "state": "streaming"}
            parts.append(open_parts[chunk["id"]])
        elif kind in ("text-delta", "reasoning-delta"):
            open_parts[chunk["id"]]["text"] += chunk["delta"]
        elif kind in ("text-end", "reasoning-end"):
            open_parts[chunk["id"]].update(
                {"state": "done"}, **({"providerMetadata": metadata} if metadata else {})
            )
        elif kind == "tool-input-available":
            call = {
                "type": f"tool-{chunk['toolName']}",
                "toolCallId": chunk["toolCallId"],
                "input": chunk["input"],
            }
            open_parts[chunk["toolCallId"]] = {**call, "state": "input-available"}
            if metadata:
                open_parts[chunk["toolCallId"]]["callProviderMetadata"] = metadata
            parts.append(open_parts[chunk["toolCallId"]])
        elif kind.startswith("data-"):
            parts.append({"type": kind, "data": chunk["data"]})
        elif kind == "tool-output-available":
            open_parts[chunk["toolCallId"]].update(state="output-available", output=chunk["output"])
    for call_id, output in (outputs or {}).items():
        open_parts[call_id].update(state="output-available", output=output)
    return {"id": "a1", "role": "assistant", "parts": parts}


def ag_ui_messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages ``@ag-ui/client`` assembles from our AG-UI ``events`` (the kinds we send):
    text and reasoning messages, tool calls on their parent message, tool results, and the
    ``encryptedValue`` a ``REASONING_ENCRYPTED_VALUE`` gives a message or tool call."""
    messages: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event["type"]
        if kind in ("TEXT_MESSAGE_START", "REASONING_MESSAGE_START") and event["messageId"] not in by_id:
            role = "assistant" if kind == "TEXT_MESSAGE_START" else "reasoning"
            by_id[event["messageId"]] = {"id": event["messageId"], "role": role, "content": ""}
            messages.append(by_id[event["messageId"]])
        elif kind in ("TEXT_MESSAGE_CONTENT", "REASONING_MESSAGE_CONTENT"):
            by_id[event["messageId"]]["content"] += event["delta"]
        elif kind == "TOOL_CALL_START":
            parent = event["parentMessageId"]
            if parent not in by_id:
                by_id[parent] = {"id": parent, "role": "assistant", "toolCalls": []}
                messages.append(by_id[parent])
            call = {"id": event["toolCallId"], "type": "function"}
            by_id[event["toolCallId"]] = {
                **call,
                "function": {"name": event["toolCallName"], "arguments": ""},
            }
            by_id[parent].setdefault("toolCalls", []).append(by_id[event["toolCallId"]])
        elif kind == "TOOL_CALL_ARGS":
            by_id[event["toolCallId"]]["function"]["arguments"] += event["delta"]
        elif kind == "REASONING_ENCRYPTED_VALUE":
            by_id[event["entityId"]]["encryptedValue"] = event["encryptedValue"]
        elif kind == "TOOL_CALL_RESULT":
            result = {"id": event["messageId"], "role": "tool", "toolCallId": event["toolCallId"]}
            # After the message with the call and the results already there, as the client puts it.
            at = next(
                i for i, m in enumerate(messages) if by_id[event["toolCallId"]] in m.get("toolCalls", [])
            )
            while at + 1 < len(messages) and messages[at + 1]["role"] == "tool":
                at += 1
            messages.insert(at + 1, {**result, "content": event["content"]})
    return messages


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` served on 127.0.0.1 (handlers cancelled on disconnect); yields its base URL (no slash)."""
    runner = await start_app(app)
    try:
        yield url_of(runner).rstrip("/")
    finally:
        await runner.cleanup()


__all__ = [
    "EXPECTED_IMAGE",
    "LONG",
    "PNG",
    "PNG_URL",
    "REDACTED",
    "SENT_IMAGE",
    "SIGNED",
    "SIGNED_CALL",
    "SIGNED_SCRIPT",
    "ag_ui_messages",
    "answer",
    "assert_continues_signed",
    "assert_restored",
    "serving",
    "ui_message",
]
