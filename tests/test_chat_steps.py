"""How a chat opens its steps, and what a finished chat leaves behind.

The first request's pre-flight runs once, in ``stream_chat``; a later step derives its request
(the thread's messages), its call index and its request id (``<first id>-<n>``) from it and
checks only the messages added since. A finished, failed or disposed chat holds no reference
cycle: reference counting frees it, the garbage collector finds nothing to do.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

import rx_allm as allm
from rx_allm._loop import background_loop
from rx_allm.preflight import new_request_id

TOOL_STEP = [
    ("tool_call", {"id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}),
    ("finish", "tool_calls"),
]
FINAL_STEP = [("text", "5"), ("finish", "stop")]


@allm.tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@allm.tool(name="add")
def add_sync(a: int, b: int) -> int:
    """Add two integers in a worker thread."""
    return a + b


def recording_engine(*scripts: list[Any]) -> tuple[allm.Engine, list[Any]]:
    record: list[Any] = []
    return allm.Engine(adapter="fake", adapter_opts={"scripts": list(scripts), "record": record}), record


@pytest.mark.asyncio
async def test_later_steps_get_their_own_request_ids_and_call_indexes() -> None:
    engine, record = recording_engine(TOOL_STEP, TOOL_STEP, FINAL_STEP)
    result = await allm.chat(engine, "2 + 3, twice?", tools=[add])
    assert result.halted_reason == "completed"
    first, second, third = (opts for _request, opts in record)
    assert re.fullmatch(r"[0-9a-f]{24}", first.request_id)
    assert (second.request_id, third.request_id) == (f"{first.request_id}-2", f"{first.request_id}-3")
    assert [opts.call_index for _request, opts in record] == [0, 1, 2]
    assert [s.response.request_id for s in result.steps] == [opts.request_id for _request, opts in record]


@pytest.mark.asyncio
async def test_a_given_request_id_names_the_first_step_and_prefixes_the_others() -> None:
    engine, record = recording_engine(TOOL_STEP, FINAL_STEP)
    await allm.chat(engine, "2 + 3?", tools=[add], request_id="turn-7")
    assert [opts.request_id for _request, opts in record] == ["turn-7", "turn-7-2"]


@pytest.mark.asyncio
async def test_a_later_step_sends_the_whole_thread_with_the_first_requests_settings() -> None:
    engine, record = recording_engine(TOOL_STEP, FINAL_STEP)
    await allm.chat(engine, "2 + 3?", tools=[add], temperature=0.5, model="m1")
    (first, _), (second, _) = record
    assert [m.role for m in second.messages] == ["user", "assistant", "tool"]
    assert second.messages[:1] == first.messages
    assert (second.model, second.temperature, second.tools) == ("m1", 0.5, first.tools)


@pytest.mark.asyncio
async def test_a_message_added_by_a_step_is_checked_before_the_next_request() -> None:
    # A provider call id that is empty makes a tool message without a call id: the next
    # request would be refused by the provider, so the chat fails before sending it.
    no_id = [
        ("tool_call", {"id": "", "name": "add", "arguments": {"a": 1, "b": 1}}),
        ("finish", "tool_calls"),
    ]
    engine, record = recording_engine(no_id, FINAL_STEP)
    result = await allm.chat(engine, "1 + 1?", tools=[add])
    assert result.halted_reason == "error"
    assert isinstance(result.error, allm.ValidationError)
    assert ("messages.2.tool_call_id", "required") in result.error.errors
    assert len(record) == 1  # the second request was never opened


# -- no reference cycles ----------------------------------------------------------------------
@pytest.fixture
def no_automatic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def unreachable_after(run: Any) -> int:
    """Objects the collector finds unreachable (in cycles) once ``run()`` is done."""
    await run()  # a first run warms the caches (compiled scripts, adapters, schemas)
    gc.collect()
    await run()
    return gc.collect()


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_automatic_gc")
async def test_a_completed_chat_with_an_async_tool_leaves_no_cycles() -> None:
    async def run() -> None:
        result = await allm.chat(
            allm.Engine(adapter="fake", adapter_opts={"scripts": [TOOL_STEP, FINAL_STEP]}), "?", tools=[add]
        )
        assert result.output_text == "5"

    assert await unreachable_after(run) == 0


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_automatic_gc")
async def test_a_failed_chat_leaves_no_cycles() -> None:
    async def run() -> None:
        engine = allm.Engine(
            adapter="fake", adapter_opts={"scripts": [TOOL_STEP, [("error", "rate_limited")]]}
        )
        result = await allm.chat(engine, "?", tools=[add])
        assert result.halted_reason == "error"
        del result  # the error's traceback refers to frames; the result is gone with it

    assert await unreachable_after(run) == 0


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_automatic_gc")
async def test_a_chat_disposed_during_its_tool_leaves_no_cycles() -> None:
    started = asyncio.Event()

    @allm.tool(name="slow")
    async def slow() -> str:
        started.set()
        await asyncio.Event().wait()  # never set: only the disposal ends this tool
        return "never"

    call = [("tool_call", {"id": "c1", "name": "slow", "arguments": {}}), ("finish", "tool_calls")]

    async def run() -> None:
        started.clear()
        events: list[Any] = []
        engine = allm.Engine(adapter="fake", adapter_opts={"scripts": [call, FINAL_STEP]})
        subscription = allm.stream_chat(engine, "?", tools=[slow]).subscribe(events.append)
        await asyncio.wait_for(started.wait(), 10)
        subscription.dispose()
        await asyncio.sleep(0)  # the cancelled task ends
        await asyncio.sleep(0)
        assert [e.type for e in events][-1] == "message_completed"

    assert await unreachable_after(run) == 0


def test_a_completed_chat_with_a_sync_tool_leaves_no_cycles(no_automatic_gc: None) -> None:
    def run() -> None:
        engine = allm.Engine(adapter="fake", adapter_opts={"scripts": [TOOL_STEP, FINAL_STEP]})
        result = allm.chat_sync(engine, "?", tools=[add_sync])
        assert result.output_text == "5"

    def settle() -> None:  # the background loop runs the callbacks still queued after the chat
        for _ in range(3):
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), background_loop()).result(timeout=10)

    run()
    settle()
    gc.collect()
    run()
    settle()
    assert gc.collect() == 0


# -- request ids ------------------------------------------------------------------------------
def test_request_ids_are_24_hex_digits_and_never_repeat() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_draws_request_ids_of_its_own() -> None:
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{24}", child)
    assert child[:16] != parent[:16]  # a new random prefix, not the parent's counter continued
