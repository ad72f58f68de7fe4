"""Async tools under a virtual-time scheduler, with and without an event loop running in the thread.

Each check is a marble test; it runs once from a sync test and once from an async test
whose loop is running, and must give the same timeline both times.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from reactivex.testing import TestScheduler

import rx_allm as allm
from rx_allm.testing import record_events, script_from_marbles, timeline


def call(name: str, call_id: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return ("tool_call", {"id": call_id, "name": name, "arguments": arguments})


def engine(*scripts: list[Any]) -> allm.Engine:
    return allm.Engine(adapter="fake", adapter_opts={"scripts": [list(s) for s in scripts]})


async def twice(x: int) -> int:
    return 2 * x


@allm.tool
async def double(x: int) -> int:
    """Doubles x through an await that never waits."""
    return await twice(x)


def napper(closed: list[str]) -> allm.FunctionTool:
    @allm.tool
    async def nap() -> str:
        """Awaits a real sleep: it cannot finish in virtual time."""
        try:
            await asyncio.sleep(5)
        finally:
            closed.append("nap")
        return "rested"

    return nap


REAL_IO = (
    "RuntimeError: async tool nap awaited real I/O under virtual time, where nothing it waits"
    " for can happen: make it a sync tool, or run the chat on the real event loop"
)


def check_values_and_real_io() -> None:
    closed: list[str] = []
    step1 = script_from_marbles(
        "-a-b|", {"a": call("double", "c1", x=4), "b": call("nap", "c2")}, finish="tool_calls"
    )
    step2 = script_from_marbles("--x-|", {"x": "done"})
    chat = allm.stream_chat(engine(step1, step2), "x", tools=[double, napper(closed)])
    records = record_events(chat, TestScheduler())
    encoded = json.dumps({"error": "tool_exception", "message": REAL_IO})
    assert timeline(records)[5:] == [
        (4.0, "message_completed:tool_calls"),
        (4.0, "tool_execution_started:double"),
        (4.0, "tool_execution_completed:double"),
        (4.0, "tool_result_encoded:8"),
        (4.0, "tool_execution_started:nap"),
        (4.0, "tool_execution_completed:nap!"),
        (4.0, f"tool_result_encoded:{encoded}"),
        (4.0, "step_completed:0"),
        (4.0, "message_started"),
        (6.0, "text_delta:done"),
        (8.0, "text_completed:done"),
        (8.0, "message_completed:stop"),
        (8.0, "step_completed:1"),
        (8.0, "chat_completed:completed"),
        (8.0, "completed"),
    ]
    assert closed == ["nap"]  # the suspended coroutine was closed: its finally ran


def check_ask_user_and_halt() -> None:
    @allm.tool
    async def book(city: str) -> str:
        """Asks for the date."""
        raise allm.AskUser(f"Which date for {city}?", choices=["mon"])

    @allm.tool
    async def transfer(amount: int) -> allm.Halt:
        """Needs a human."""
        return allm.Halt("needs_approval", {"amount": amount})

    for step, reason in [
        ("-a-|", "ask_user"),
        ("-b-|", "needs_approval"),
    ]:
        values = {"a": call("book", "c1", city="Oslo"), "b": call("transfer", "c1", amount=5)}
        chat = allm.stream_chat(
            engine(script_from_marbles(step, values, finish="tool_calls")), "x", tools=[book, transfer]
        )
        records = record_events(chat, TestScheduler())
        assert timeline(records)[-3:] == [
            (3.0, "step_completed:0"),
            (3.0, f"chat_completed:{reason}"),
            (3.0, "completed"),
        ]
        assert records[-2].value.result.halted_reason == reason


CHECKS = [check_values_and_real_io, check_ask_user_and_halt]


@pytest.mark.parametrize("check", CHECKS)
def test_without_a_running_loop(check: Callable[[], None]) -> None:
    check()
    assert asyncio._get_running_loop() is None


@pytest.mark.asyncio
@pytest.mark.parametrize("check", CHECKS)
async def test_with_a_running_loop_which_is_left_alone(check: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    check()
    assert asyncio.get_running_loop() is loop
    await asyncio.sleep(0)  # the loop still runs this test
