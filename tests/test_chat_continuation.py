"""Threads that continue correctly per provider, with reasoning turned on.

The emulator refuses a follow-up the way the real API would (Anthropic: a tool-use turn
without its signed thinking block; Gemini: a function call without the thoughtSignature it
issued; Responses: a call without its reasoning item; every provider: tool results that
answer no call). So a chat that completes here sent valid follow-ups.
"""

from __future__ import annotations

import json

import pytest
from helpers import thinking_engine as engine

import rx_allm as allm
from rx_allm.testing import ProviderEmulator, Reply, ToolCallSpec

PROVIDERS = ("openai", "responses", "anthropic", "gemini")
THINKING = "The user wants a sum. I should call the tool."
_ADAPTER = {"openai": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}


@allm.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def thinking_tool_turn() -> Reply:
    return Reply(text="", thinking=THINKING, tool_calls=[ToolCallSpec("add", {"a": 2, "b": 3})])


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_tool_loop_with_reasoning_continues(provider: str) -> None:
    async with ProviderEmulator([thinking_tool_turn(), Reply(text="5")]) as emu:
        result = await allm.chat(engine(emu, provider), "2 + 3?", tools=[add])
        assert result.halted_reason == "completed", result.error
        assert result.output_text == "5" and emu.posts() == 2
    assistant = result.thread.messages[1]
    if provider != "openai":
        assert assistant.reasoning and all(r.provider == _ADAPTER[provider] for r in assistant.reasoning)
    sent = json.dumps(emu.requests[1].json)
    if provider == "anthropic":
        blocks = emu.requests[1].json["messages"][1]["content"]
        assert [b["type"] for b in blocks] == ["thinking", "tool_use"] and blocks[0]["signature"]
    if provider == "gemini":
        assert '"thoughtSignature"' in sent
    if provider == "responses":
        assert [i.get("type", "message") for i in emu.requests[1].json["input"]] == [
            "message",
            "reasoning",
            "function_call",
            "function_call_output",
        ]


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_thread_round_trip_with_reasoning_continues_identically(provider: str) -> None:
    replies = [thinking_tool_turn(), Reply(text="5"), Reply(text="5")]
    async with ProviderEmulator(replies) as emu:
        eng = engine(emu, provider)
        paused = await allm.chat(eng, "2 + 3?", tools=[add], halt_when=lambda step: True)
        assert paused.halted_reason == "halt_when" and paused.thread.messages[-1].role == "tool"
        restored = allm.Thread.model_validate_json(paused.thread.model_dump_json())
        assert restored == paused.thread
        direct = await allm.chat(eng, paused.thread, tools=[add])
        again = await allm.chat(eng, restored, tools=[add])
    assert direct.halted_reason == again.halted_reason == "completed", (direct.error, again.error)
    assert emu.requests[1].json == emu.requests[2].json


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("anthropic", "gemini"),
        ("gemini", "anthropic"),
        ("responses", "anthropic"),
        ("anthropic", "responses"),
    ],
)
async def test_a_thread_with_reasoning_moved_to_another_provider_is_valid(source: str, target: str) -> None:
    async with ProviderEmulator([thinking_tool_turn(), Reply(text="5"), Reply(text="still 5")]) as emu:
        first = await allm.chat(engine(emu, source), "2 + 3?", tools=[add])
        assert first.halted_reason == "completed", first.error
        moved = await allm.chat(engine(emu, target), first.thread.extended([allm.user("sure?")]), tools=[add])
    assert moved.halted_reason == "completed" and moved.output_text == "still 5", moved.error
    sent = json.dumps(emu.requests[2].json)
    assert THINKING not in sent  # the source provider's reasoning stays with it
