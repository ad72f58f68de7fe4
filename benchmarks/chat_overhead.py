"""Microseconds per 2-step chat with one tool call: rx_allm on the Fake vs pydantic-ai with FunctionModel.

Run: ``python benchmarks/chat_overhead.py [--chats N] [--rounds R]``. Both sides do the same
round trip: the model calls ``add(a=2, b=3)``, the (async) tool runs, the model answers
"5". rx_allm: ``await allm.chat(engine, prompt, tools=[add])`` over a Fake engine (one
script per model request); pydantic-ai: ``await agent.run(prompt)`` with a ``FunctionModel``
answering the same two turns. Prints the median over rounds of the mean per chat (wall and
CPU time) and of the ratio (target: rx_allm at least 20x faster). Within a round the two sides
alternate in ten slices, so the speed of a shared machine, which drifts over seconds, weighs on
both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import time
from typing import Any

from harness import table

import rx_allm as allm

PROMPT = "What is 2 + 3?"
TOOL_STEP = [
    ("tool_call", {"id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}),
    ("finish", "tool_calls"),
]
FINAL_STEP = [("text", "5"), ("finish", "stop")]


@allm.tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def per_rx_allm(chats: int) -> tuple[float, float]:
    opts = {"scripts": [TOOL_STEP, FINAL_STEP]}
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(chats):
        # A fresh engine per chat (its Fake script cursor starts at 0); its cost is included.
        result = await allm.chat(allm.Engine(adapter="fake", adapter_opts=opts), PROMPT, tools=[add])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.output_text == "5" and result.steps[0].tool_outcomes[0].result == 5
    return wall / chats * 1e6, cpu / chats * 1e6


def pydantic_ai_installed() -> bool:
    hidden = os.environ.get("RX_ALLM_BENCH_HIDE", "").split(",")
    return "pydantic_ai" not in hidden and importlib.util.find_spec("pydantic_ai") is not None


def pydantic_ai_agent() -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if any(isinstance(part, ToolReturnPart) for part in messages[-1].parts):
            return ModelResponse(parts=[TextPart("5")])
        return ModelResponse(parts=[ToolCallPart("add", {"a": 2, "b": 3}, tool_call_id="c1")])

    async def add_tool(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return Agent(FunctionModel(model), tools=[add_tool])


async def per_pydantic_ai(chats: int) -> tuple[float, float]:
    agent = pydantic_ai_agent()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(chats):
        result = await agent.run(PROMPT)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.output == "5"
    return wall / chats * 1e6, cpu / chats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    peer = pydantic_ai_installed()
    asyncio.run(per_rx_allm(min(args.chats, 200)))  # warm-up
    if peer:
        asyncio.run(per_pydantic_ai(min(args.chats, 50)))
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        ours_round, theirs_round = asyncio.run(interleaved_round(args.chats, peer))
        ours.append(ours_round)
        if peer:
            theirs.append(theirs_round)
    rows: list[list[object]] = [["rx_allm chat (Fake)", *_medians(ours)]]
    rows.append(
        ["pydantic-ai Agent.run (FunctionModel)", *_medians(theirs)]
        if peer
        else ["pydantic_ai", "not installed", ""]
    )
    print(f"2-step chat with one tool call, {args.chats:,} chats, median of {args.rounds} round(s)")
    print(table(["path", "us/chat", "cpu us/chat"], rows))
    if peer:
        wall = statistics.median(t[0] / o[0] for o, t in zip(ours, theirs, strict=True))
        cpu = statistics.median(t[1] / o[1] for o, t in zip(ours, theirs, strict=True))
        verdict = "met" if wall >= 20 else "NOT met"
        print(
            f"target: rx_allm >= 20x faster than pydantic-ai -> {wall:.1f}x wall, {cpu:.1f}x cpu, {verdict}"
        )
    else:
        print("target: rx_allm >= 20x faster than pydantic-ai -> not measured (pydantic-ai not installed)")


SLICES = 10


async def interleaved_round(chats: int, peer: bool) -> tuple[tuple[float, float], tuple[float, float]]:
    """One round on one event loop: ``chats`` chats a side, alternating in ``SLICES`` slices (µs per chat)."""
    size = max(1, chats // SLICES)
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(max(1, chats // size)):
        ours.append(await per_rx_allm(size))
        if peer:
            theirs.append(await per_pydantic_ai(size))
    return _mean(ours), _mean(theirs) if theirs else (0.0, 0.0)


def _mean(slices: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.fmean(s[0] for s in slices), statistics.fmean(s[1] for s in slices)


def _medians(runs: list[tuple[float, float]]) -> list[float]:
    return [statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)]


if __name__ == "__main__":
    main()
