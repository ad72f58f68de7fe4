"""What the provider emulator answers when ``rx-allm serve`` runs with no provider configured.

A small scripted model in the OpenAI Chat Completions format, enough to show every part
of the chat page: a question about the weather gets a ``get_weather`` call, the tool's
result gets a sentence built from it, a prompt containing "fail" gets a mid-stream
provider error, anything else an explanation of where the answer comes from.
"""

from __future__ import annotations

import re
from typing import Any

from rx_allm.testing.emulator import Reply, ToolCallSpec

#: The id of the emulated model's weather call (stable, so tests can name it).
WEATHER_CALL_ID = "call_weather"
_CITY = re.compile(r"\b(?:in|for|at)\s+([A-Z][\w\- ]*?)\s*(?:[?.!,]|$)")


def emulated_reply(body: Any, chunk_delay: float = 0.03) -> Reply:
    """The reply to a Chat Completions request ``body``."""
    messages = body.get("messages") if isinstance(body, dict) else None
    last = messages[-1] if isinstance(messages, list) and messages else {}
    if not isinstance(last, dict):
        last = {}
    if last.get("role") == "tool":
        return Reply(text=_after_tool(str(last.get("content") or "")), chunk_delay=chunk_delay)
    content = last.get("content")
    prompt = content if isinstance(content, str) else ""
    if "fail" in prompt.lower():
        return Reply(text="This reply will not finish.", chunk_delay=chunk_delay, error_after=3)
    if "weather" in prompt.lower():
        match = _CITY.search(prompt)
        city = match.group(1).strip() if match else "Paris"
        call = ToolCallSpec("get_weather", {"city": city}, id=WEATHER_CALL_ID)
        return Reply(
            text="Let me check the weather.", tool_calls=[call], finish="tool_calls", chunk_delay=chunk_delay
        )
    return Reply(text=_explanation(prompt), chunk_delay=chunk_delay)


def _after_tool(content: str) -> str:
    return f"Here is what the tool found: {content}"


def _explanation(prompt: str) -> str:
    return (
        f"You asked: “{prompt}”. This answer comes from rx_allm's provider emulator, streamed token by "
        "token over real HTTP. Ask about the weather in a city to see a tool call. Set OPENAI_API_KEY, "
        "ANTHROPIC_API_KEY or GEMINI_API_KEY to talk to a real model."
    )
