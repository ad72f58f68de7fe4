"""Helpers of the browser-protocol tests: the emulated model they talk to, and serving an app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from rx_allm.cli import demo_reply, last_user_text
from rx_allm.testing.emulator import RecordedRequest, Reply
from rx_allm.ui.serving import start_app, url_of

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


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` served on 127.0.0.1 (handlers cancelled on disconnect); yields its base URL (no slash)."""
    runner = await start_app(app)
    try:
        yield url_of(runner).rstrip("/")
    finally:
        await runner.cleanup()


__all__ = ["LONG", "answer", "serving", "ui_message"]
