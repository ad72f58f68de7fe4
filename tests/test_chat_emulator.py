"""The tool loop over real HTTP against the provider emulator, for the four real providers.

The emulator records every request: the follow-up requests must carry the assistant turn
with its tool calls and the tool results with the right call ids, in each provider's own
wire shape.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import rx_allm as allm
from rx_allm.events import MessageStarted, StepCompleted
from rx_allm.testing import ProviderEmulator, Reply, ToolCallSpec

PROVIDERS = ("openai", "responses", "anthropic", "gemini")
KEY = "sk-chat-emulator-test-0000"


def provider_engine(emu: ProviderEmulator, provider: str) -> allm.Engine:
    """An engine for ``provider`` (``responses`` = OpenAI's Responses endpoint) pointed at ``emu``."""
    opts: dict[str, Any] = {"base_url": emu.base_url(provider), "api_key": KEY}
    if provider in ("openai", "responses"):
        opts["endpoint"] = "responses" if provider == "responses" else "chat_completions"
        return allm.Engine(adapter="openai", adapter_opts=opts, model="gpt-4.1-mini")
    model = {"anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}[provider]
    return allm.Engine(adapter=provider, adapter_opts=opts, model=model)


@allm.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def tool_turn(*calls: tuple[str, dict[str, Any]]) -> Reply:
    """A reply that calls tools: (id, arguments) pairs for ``add``."""
    return Reply(text="", tool_calls=[ToolCallSpec("add", args, id=call_id) for call_id, args in calls])


def calls_and_results(provider: str, body: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """The call ids of the assistant turns and the (call id, result text) pairs answering them."""
    if provider == "openai":
        messages = body["messages"]
        calls = [c["id"] for m in messages if m["role"] == "assistant" for c in m.get("tool_calls", [])]
        return calls, [(m["tool_call_id"], m["content"]) for m in messages if m["role"] == "tool"]
    if provider == "responses":
        items = body["input"]
        calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
        return calls, [(i["call_id"], i["output"]) for i in items if i.get("type") == "function_call_output"]
    if provider == "anthropic":
        blocks = [
            (m["role"], b) for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
        ]
        calls = [b["id"] for role, b in blocks if role == "assistant" and b["type"] == "tool_use"]
        results = [
            (b["tool_use_id"], _anthropic_text(b["content"])) for _, b in blocks if b["type"] == "tool_result"
        ]
        return calls, results
    parts = [p for c in body["contents"] for p in c["parts"]]
    calls = [p["functionCall"].get("id", "") for p in parts if "functionCall" in p]
    responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
    return calls, [(r.get("id", ""), str(r["response"].get("result", r["response"]))) for r in responses]


def offered(provider: str, body: dict[str, Any]) -> list[str]:
    """The tool names a request offers."""
    if provider == "openai":
        return [t["function"]["name"] for t in body.get("tools", [])]
    if provider == "gemini":
        return [d["name"] for t in body.get("tools", []) for d in t.get("functionDeclarations", [])]
    return [t["name"] for t in body.get("tools", [])]


def _anthropic_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_two_step_tool_loop(provider: str) -> None:
    async with ProviderEmulator([tool_turn(("call_1", {"a": 2, "b": 3})), Reply(text="2 + 3 = 5")]) as emu:
        result = await allm.chat(provider_engine(emu, provider), "What is 2 + 3?", tools=[add])
    assert result.halted_reason == "completed", result.error
    assert result.output_text == "2 + 3 = 5" and len(emu.requests) == 2
    assert result.steps[0].response.tool_calls[0].id == "call_1"
    assert result.steps[0].tool_outcomes[0].result == 5
    first, second = emu.requests[0].json, emu.requests[1].json
    assert offered(provider, first) == offered(provider, second) == ["add"]
    calls, results = calls_and_results(provider, second)
    assert calls == ["call_1"] and results == [("call_1", "5")]
    per_step = [step.response.usage.input_tokens or 0 for step in result.steps]
    assert len(per_step) == 2 and all(per_step)  # the emulator counts each request's text
    assert result.usage.input_tokens == sum(per_step)  # summed over the steps


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_parallel_calls_come_back_in_call_order(provider: str) -> None:
    step = tool_turn(("call_a", {"a": 1, "b": 1}), ("call_b", {"a": 20, "b": 1}))
    async with ProviderEmulator([step, Reply(text="done")]) as emu:
        result = await allm.chat(provider_engine(emu, provider), "two sums", tools=[add])
    assert result.halted_reason == "completed", result.error
    calls, results = calls_and_results(provider, emu.requests[1].json)
    assert calls == ["call_a", "call_b"] and results == [("call_a", "2"), ("call_b", "21")]


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_error_in_step_two_keeps_step_one(provider: str) -> None:
    async with ProviderEmulator([tool_turn(("call_1", {"a": 1, "b": 2})), Reply(status=503)]) as emu:
        result = await allm.chat(provider_engine(emu, provider), "x", tools=[add])
    assert result.halted_reason == "error" and isinstance(result.error, allm.AdapterError)
    assert result.error.reason == "provider_unavailable" and len(result.steps) == 1
    assert [m.role for m in result.thread.messages] == ["user", "assistant", "tool"]


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_disposal_during_a_model_request_closes_it_and_sends_nothing(provider: str) -> None:
    async with ProviderEmulator(
        [tool_turn(("call_1", {"a": 1, "b": 2})), Reply(text="slow answer", stall_after=1)]
    ) as emu:
        second_started = asyncio.Event()
        seen: list[Any] = []

        def on_next(event: Any) -> None:
            seen.append(event)
            if isinstance(event, MessageStarted) and any(isinstance(e, StepCompleted) for e in seen):
                second_started.set()

        chat = allm.stream_chat(provider_engine(emu, provider), "x", tools=[add])
        subscription = chat.subscribe(on_next=on_next)
        await asyncio.wait_for(second_started.wait(), 10)
        subscription.dispose()
        await emu.wait_for_disconnects(1, timeout=5)
        await asyncio.sleep(0.05)
    assert len(emu.requests) == 2 and emu.disconnects[0].request_index == 1


@pytest.mark.asyncio
async def test_disposal_during_a_tool_sends_nothing_further() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @allm.tool(name="add")
    async def slow_add(a: int, b: int) -> int:
        """Waits until cancelled."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return a + b

    async with ProviderEmulator([tool_turn(("call_1", {"a": 1, "b": 2})), Reply(text="never sent")]) as emu:
        subscription = allm.stream_chat(provider_engine(emu, "anthropic"), "x", tools=[slow_add]).subscribe()
        await asyncio.wait_for(started.wait(), 10)
        subscription.dispose()
        await asyncio.wait_for(cancelled.wait(), 5)
        await asyncio.sleep(0.05)
    assert len(emu.requests) == 1 and emu.completed == [0]


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_thread_json_round_trip_mid_conversation_continues_identically(provider: str) -> None:
    replies = [tool_turn(("call_1", {"a": 4, "b": 5})), Reply(text="nine"), Reply(text="nine")]
    async with ProviderEmulator(replies) as emu:
        engine = provider_engine(emu, provider)
        paused = await allm.chat(engine, "4 + 5?", tools=[add], mode="manual")
        assert paused.halted_reason == "manual_tool_calls"
        session = allm.Session(
            thread=paused.thread, status="awaiting_tools", pending_tool_calls=paused.pending_tool_calls
        )
        session.submit_tool_results({"call_1": 9})
        restored = allm.Thread.model_validate_json(session.thread.model_dump_json())
        assert restored == session.thread
        direct = await allm.chat(engine, session.thread, tools=[add])
        again = await allm.chat(engine, restored, tools=[add])
    assert direct.output_text == again.output_text == "nine"
    assert emu.requests[1].json == emu.requests[2].json
    calls, results = calls_and_results(provider, emu.requests[2].json)
    assert calls == ["call_1"] and results == [("call_1", "9")]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("source", "target"),
    [("anthropic", "openai"), ("openai", "gemini"), ("gemini", "responses"), ("responses", "anthropic")],
)
async def test_a_thread_moved_to_another_provider_makes_a_valid_request(source: str, target: str) -> None:
    async with ProviderEmulator(
        [tool_turn(("call_1", {"a": 1, "b": 1})), Reply(text="two"), Reply(text="still two")]
    ) as emu:
        first = await allm.chat(provider_engine(emu, source), "1 + 1?", tools=[add])
        moved = await allm.chat(
            provider_engine(emu, target), first.thread.extended([allm.user("sure?")]), tools=[add]
        )
    assert moved.halted_reason == "completed" and moved.output_text == "still two", moved.error
    calls, results = calls_and_results(target, emu.requests[2].json)
    assert calls == ["call_1"] and results == [("call_1", "2")]


@pytest.mark.asyncio
async def test_gemini_calls_without_ids_are_answered_by_name_in_call_order() -> None:
    calls = [
        ToolCallSpec("add", {"a": 1, "b": 2}),
        ToolCallSpec("add", {"a": 3, "b": 4}),
    ]  # no ids, as Gemini 2.x
    async with ProviderEmulator([Reply(text="", tool_calls=calls), Reply(text="ok")]) as emu:
        result = await allm.chat(provider_engine(emu, "gemini"), "x", tools=[add])
    assert result.halted_reason == "completed", result.error
    ids = [c.id for c in result.steps[0].response.tool_calls]
    assert len(set(ids)) == 2 and [m.tool_call_id for m in result.thread.messages if m.role == "tool"] == ids
    parts = [p for c in emu.requests[1].json["contents"] for p in c["parts"]]
    answers = [p["functionResponse"] for p in parts if "functionResponse" in p]
    assert answers == [{"name": "add", "response": {"result": 3}}, {"name": "add", "response": {"result": 7}}]
