"""Helpers of the browser-protocol tests: the emulated model they talk to, and serving an app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

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


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` served on 127.0.0.1 (handlers cancelled on disconnect); yields its base URL (no slash)."""
    runner = await start_app(app)
    try:
        yield url_of(runner).rstrip("/")
    finally:
        await runner.cleanup()


__all__ = ["LONG", "answer", "serving"]
