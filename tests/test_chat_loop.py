"""The tool loop on the Fake: marble diagrams in virtual time, plus real-time tool execution."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Literal

import pytest
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rx_allm as allm
from rx_allm.events import StepCompleted, ToolExecutionCompleted, ToolResultEncoded
from rx_allm.testing import CleanupCounter, assert_completed, assert_error, record_events, script_from_marbles
from rx_allm.testing import timeline as timeline_of


@allm.tool
def add(a: int, b: int = 2) -> int:
    """Add two integers."""
    return a + b


def call(name: str, call_id: str = "c1", **arguments: Any) -> tuple[str, dict[str, Any]]:
    return ("tool_call", {"id": call_id, "name": name, "arguments": arguments})


def engine(*scripts: list[Any], **opts: Any) -> allm.Engine:
    return allm.Engine(adapter="fake", adapter_opts={"scripts": [list(s) for s in scripts], **opts})


TOOL_STEP = [call("add", a=1), ("finish", "tool_calls")]
FINAL_STEP = [("text", "3"), ("finish", "stop")]


def test_two_step_loop_marbles() -> None:
    step1 = script_from_marbles("-a-|", {"a": call("add", a=1)}, finish="tool_calls")
    step2 = script_from_marbles("--x-|", {"x": "three"})
    chat = allm.stream_chat(engine(step1, step2), "add 1 and 2", tools=[add])
    records = record_events(chat, TestScheduler())
    assert timeline_of(records) == [
        (0.0, "message_started"),
        (1.0, "tool_call_started:add"),
        (1.0, "tool_call_completed:add"),
        (3.0, "message_completed:tool_calls"),
        (3.0, "tool_execution_started:add"),
        (3.0, "tool_execution_completed:add"),
        (3.0, "tool_result_encoded:3"),
        (3.0, "step_completed:0"),
        (3.0, "message_started"),
        (5.0, "text_delta:three"),
        (7.0, "text_completed:three"),
        (7.0, "message_completed:stop"),
        (7.0, "step_completed:1"),
        (7.0, "chat_completed:completed"),
        (7.0, "completed"),
    ]
    result = records[-2].value.result
    assert result.halted_reason == "completed" and result.output_text == "three"
    assert [m.role for m in result.thread.messages] == ["user", "assistant", "tool", "assistant"]
    assert result.thread.messages[2].tool_call_id == "c1" and result.thread.messages[2].content == "3"
    assert len(result.steps) == 2 and result.steps[0].tool_outcomes[0].result == 3


def test_next_request_carries_the_tool_result() -> None:
    requests: list[Any] = []
    allm.chat_sync(engine(TOOL_STEP, FINAL_STEP, record=requests), "add", tools=[add])
    assert len(requests) == 2
    second = requests[1][0]
    assert [m.role for m in second.messages] == ["user", "assistant", "tool"]
    assert second.messages[1].tool_calls[0].id == "c1" and second.messages[2].tool_call_id == "c1"
    assert [t.name for t in second.tools] == ["add"]
    assert second.tools[0].schema_["required"] == ["a"]


def test_parallel_calls_results_in_call_order_groups_together() -> None:
    step = [call("add", "c1", a=1), call("add", "c2", a=10, b=5), ("finish", "tool_calls")]
    records = record_events(allm.stream_chat(engine(step, FINAL_STEP), "x", tools=[add]), TestScheduler())
    labels = [label for _, label in timeline_of(records)]
    first = labels.index("tool_execution_started:add")
    assert labels[first : first + 6] == [
        "tool_execution_started:add",
        "tool_execution_completed:add",
        "tool_result_encoded:3",
        "tool_execution_started:add",
        "tool_execution_completed:add",
        "tool_result_encoded:15",
    ]
    thread = records[-2].value.result.thread
    assert [(m.tool_call_id, m.content) for m in thread.messages if m.role == "tool"] == [
        ("c1", "3"),
        ("c2", "15"),
    ]


@pytest.mark.asyncio
async def test_async_tools_run_concurrently_groups_in_completion_order() -> None:
    second_done = asyncio.Event()

    @allm.tool
    async def slow() -> str:
        """Waits for fast."""
        await second_done.wait()
        return "slow"

    @allm.tool
    async def fast() -> str:
        """Finishes first."""
        second_done.set()
        return "fast"

    step = [call("slow", "c1"), call("fast", "c2"), ("finish", "tool_calls")]
    events: list[Any] = []
    result = await allm.chat(
        engine(step, FINAL_STEP), "x", tools=[slow, fast], on_event=events.append, tool_timeout=5
    )
    assert result.halted_reason == "completed"
    encoded = [e.id for e in events if isinstance(e, ToolResultEncoded)]
    assert encoded == ["c2", "c1"]  # completion order
    tools = [(m.tool_call_id, m.content) for m in result.thread.messages if m.role == "tool"]
    assert tools == [("c1", "slow"), ("c2", "fast")]  # call order


def test_sync_tools_run_in_worker_threads_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=5)
    names: list[str] = []

    @allm.tool
    def meet(who: str) -> str:
        """Both calls must be running at once to pass the barrier."""
        names.append(threading.current_thread().name)
        barrier.wait()
        return who

    step = [call("meet", "c1", who="a"), call("meet", "c2", who="b"), ("finish", "tool_calls")]
    result = allm.chat_sync(engine(step, FINAL_STEP), "x", tools=[meet])
    assert result.halted_reason == "completed"
    assert all(name.startswith("rx_allm-tool") for name in names) and len(names) == 2
    assert [o.kind for o in result.steps[0].tool_outcomes] == ["result", "result"]


def test_max_turns_counts_model_requests() -> None:
    requests: list[Any] = []
    result = allm.chat_sync(
        engine(TOOL_STEP, TOOL_STEP, TOOL_STEP, record=requests), "x", tools=[add], max_turns=2
    )
    assert result.halted_reason == "max_turns" and len(requests) == 2 and len(result.steps) == 2
    assert result.thread.messages[-1].role == "tool"  # the thread stays valid for continuing


def test_max_turns_default_comes_from_engine_params() -> None:
    eng = engine(TOOL_STEP, TOOL_STEP, TOOL_STEP)
    eng.params["max_turns"] = 1
    assert allm.chat_sync(eng, "x", tools=[add]).halted_reason == "max_turns"


@pytest.mark.parametrize(("verdict", "reason"), [(True, "halt_when"), ("enough", "enough")])
def test_halt_when_gets_the_step_after_the_thread_update(verdict: Any, reason: str) -> None:
    seen: list[allm.StepResult] = []

    def halt_when(step: allm.StepResult) -> Any:
        seen.append(step)
        return verdict

    result = allm.chat_sync(engine(TOOL_STEP, FINAL_STEP), "x", tools=[add], halt_when=halt_when)
    assert result.halted_reason == reason and len(result.steps) == 1
    assert seen[0].thread.messages[-1].tool_call_id == "c1" and seen[0].tool_outcomes[0].result == 3


def test_a_tool_halt_ends_the_chat_with_its_reason() -> None:
    @allm.tool
    def transfer(amount: int) -> allm.Halt:
        """Needs a human."""
        return allm.Halt("needs_approval", {"amount": amount})

    scheduler = TestScheduler()
    chat = allm.stream_chat(
        engine([call("transfer", amount=5), ("finish", "tool_calls")]), "x", tools=[transfer]
    )
    records = record_events(chat, scheduler)
    labels = [label for _, label in timeline_of(records)]
    assert labels[-5:] == [
        "tool_execution_completed:transfer",
        "tool_halt:needs_approval",
        "step_completed:0",
        "chat_completed:needs_approval",
        "completed",
    ]
    result = records[-2].value.result
    assert result.halted_reason == "needs_approval" and result.thread.messages[-1].content == '{"amount": 5}'


def test_ask_user_halts_without_a_result_in_the_thread() -> None:
    @allm.tool
    def book(city: str) -> str:
        """Books a trip."""
        raise allm.AskUser(f"Which date for {city}?", choices=["mon", "tue"])

    records = record_events(
        allm.stream_chat(engine([call("book", city="Oslo"), ("finish", "tool_calls")]), "x", tools=[book]),
        TestScheduler(),
    )
    labels = [label for _, label in timeline_of(records)]
    assert "ask_user_requested:Which date for Oslo?" in labels
    asked = next(r.value for r in records if r.label.startswith("ask_user_requested"))
    assert asked.tool_call_id == "c1" and asked.opts == {"choices": ["mon", "tue"]}
    result = records[-2].value.result
    assert result.halted_reason == "ask_user" and result.thread.messages[-1].role == "assistant"


def failing_tool() -> allm.FunctionTool:
    @allm.tool
    def explode(x: int) -> int:
        """Always fails."""
        raise RuntimeError(f"boom {x}")

    return explode


def test_tool_exception_is_fed_back_by_default() -> None:
    requests: list[Any] = []
    step = [call("explode", x=1), ("finish", "tool_calls")]
    result = allm.chat_sync(engine(step, FINAL_STEP, record=requests), "x", tools=[failing_tool()])
    assert result.halted_reason == "completed" and len(requests) == 2
    outcome = result.steps[0].tool_outcomes[0]
    assert outcome.is_error and outcome.reason == "tool_exception" and "boom 1" in (outcome.content or "")
    assert requests[1][0].messages[-1].content == outcome.content


def test_on_tool_error_halt() -> None:
    step = [call("explode", x=1), ("finish", "tool_calls")]
    result = allm.chat_sync(engine(step, FINAL_STEP), "x", tools=[failing_tool()], on_tool_error="halt")
    assert result.halted_reason == "tool_error" and len(result.steps) == 1
    assert result.thread.messages[-1].role == "tool"


def test_on_tool_error_callable_decides() -> None:
    step = [call("explode", x=1), call("nope", "c2"), ("finish", "tool_calls")]
    seen: list[str | None] = []

    def policy(outcome: allm.ToolOutcome) -> Literal["continue", "halt"]:
        seen.append(outcome.reason)
        return "halt" if outcome.reason == "unknown_tool" else "continue"

    result = allm.chat_sync(engine(step, FINAL_STEP), "x", tools=[failing_tool()], on_tool_error=policy)
    assert result.halted_reason == "tool_error" and seen == ["tool_exception", "unknown_tool"]


@pytest.mark.parametrize("policy", [lambda o: 1 / 0, lambda o: "maybe"])
def test_on_tool_error_callable_that_fails_is_a_typed_error(policy: Any) -> None:
    step = [call("explode", x=1), ("finish", "tool_calls")]
    records = record_events(
        allm.stream_chat(engine(step, FINAL_STEP), "x", tools=[failing_tool()], on_tool_error=policy),
        TestScheduler(),
    )
    error = assert_error(records, allm.ValidationError, "invalid_request")
    assert error.errors[0][0] == "on_tool_error"


def test_unknown_tool_and_invalid_arguments_are_fed_back() -> None:
    step = [
        call("nope", "c1"),
        call("add", "c2", a="not a number"),
        call("add", "c3", a=1, z=0),
        ("finish", "tool_calls"),
    ]
    records = record_events(allm.stream_chat(engine(step, FINAL_STEP), "x", tools=[add]), TestScheduler())
    completed = [r.value for r in records if isinstance(r.value, ToolExecutionCompleted)]
    assert [(e.id, e.is_error, e.result["error"]) for e in completed] == [
        ("c1", True, "unknown_tool"),
        ("c2", True, "invalid_arguments"),
        ("c3", True, "invalid_arguments"),
    ]
    assert "available: add" in completed[0].result["message"]
    assert records[-2].value.result.halted_reason == "completed"


def hanging_tool(started: asyncio.Event, cancelled: asyncio.Event) -> allm.FunctionTool:
    """An async tool that waits until cancelled (and says when it started and was cancelled)."""

    @allm.tool(name="hang")
    async def hang() -> str:
        """Never returns."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    return hang


@pytest.mark.asyncio
async def test_tool_timeout_is_fed_back_and_the_async_tool_is_cancelled() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()
    hang = hanging_tool(started, cancelled)

    step = [call("hang"), ("finish", "tool_calls")]
    result = await allm.chat(engine(step, FINAL_STEP), "x", tools=[hang], tool_timeout=0.05)
    outcome = result.steps[0].tool_outcomes[0]
    assert outcome.reason == "tool_timeout" and result.halted_reason == "completed"
    assert cancelled.is_set()


def test_sync_tool_timeout_uses_the_tools_own_timeout() -> None:
    release = threading.Event()

    @allm.tool(timeout=0.05)
    def stuck() -> str:
        """Blocks until released."""
        release.wait(5)
        return "late"

    try:
        result = allm.chat_sync(
            engine([call("stuck"), ("finish", "tool_calls")], FINAL_STEP), "x", tools=[stuck]
        )
    finally:
        release.set()
    assert result.steps[0].tool_outcomes[0].reason == "tool_timeout"


def test_manual_mode_halts_with_pending_calls() -> None:
    requests: list[Any] = []
    result = allm.chat_sync(engine(TOOL_STEP, FINAL_STEP, record=requests), "x", tools=[add], mode="manual")
    assert result.halted_reason == "manual_tool_calls" and len(requests) == 1
    assert [c.id for c in result.pending_tool_calls] == ["c1"]
    assert result.steps[0].tool_outcomes[0].kind == "pending"


def test_manual_tools_and_specs_halt_after_the_automatic_ones_ran() -> None:
    @allm.tool(manual=True)
    def approve(amount: int) -> str:
        """Run by the caller."""
        raise AssertionError("never run by the loop")

    lookup = allm.tool(name="lookup", description="caller-run", schema={"type": "object", "properties": {}})
    step = [
        call("add", "c1", a=1),
        call("approve", "c2", amount=3),
        call("lookup", "c3"),
        ("finish", "tool_calls"),
    ]
    result = allm.chat_sync(engine(step), "x", tools=[add, approve, lookup])
    assert result.halted_reason == "manual_tool_calls"
    assert [c.id for c in result.pending_tool_calls] == ["c2", "c3"]
    assert [m.tool_call_id for m in result.thread.messages if m.role == "tool"] == ["c1"]


def test_adapter_error_in_step_two_keeps_step_one() -> None:
    step2 = script_from_marbles("-x-#", {"x": "partial"})
    records = record_events(allm.stream_chat(engine(TOOL_STEP, step2), "x", tools=[add]), TestScheduler())
    assert_error(records, allm.AdapterError, "provider_unavailable", at=3.0)
    assert "chat_completed" not in [r.label.split(":")[0] for r in records]
    result = allm.chat_sync(engine(TOOL_STEP, step2), "x", tools=[add])
    assert result.halted_reason == "error" and isinstance(result.error, allm.AdapterError)
    assert len(result.steps) == 1 and result.steps[0].tool_outcomes[0].result == 3
    assert result.response.output_text == "partial" and result.response.finish_reason == "error"
    assert [m.role for m in result.thread.messages] == ["user", "assistant", "tool"]


def test_a_missing_script_for_step_two_is_an_error_not_a_hang() -> None:
    result = allm.chat_sync(engine(TOOL_STEP), "x", tools=[add])
    assert result.halted_reason == "error" and result.error is not None
    assert result.error.reason == "no_scripted_response"


def test_disposal_during_a_model_request_sends_nothing_further() -> None:
    scheduler = TestScheduler()
    counter = CleanupCounter(lambda: scheduler.clock)
    requests: list[Any] = []
    step1 = script_from_marbles("-a---|", {"a": call("add", a=1)}, finish="tool_calls")
    chat = allm.stream_chat(
        engine(step1, FINAL_STEP, record=requests, cleanup_observer=counter), "x", tools=[add]
    )
    records = record_events(chat, scheduler, dispose_at=2.0)
    assert [label for _, label in timeline_of(records)] == [
        "message_started",
        "tool_call_started:add",
        "tool_call_completed:add",
    ]
    assert counter.ends == [("disposed", 2.0)] and len(requests) == 1


def test_disposal_between_steps_sends_nothing_further() -> None:
    requests: list[Any] = []
    chat = allm.stream_chat(engine(TOOL_STEP, FINAL_STEP, record=requests), "x", tools=[add])
    until_step = chat.pipe(ops.take_while(lambda e: not isinstance(e, StepCompleted), inclusive=True))
    records = record_events(until_step, TestScheduler())
    assert_completed(records)
    assert records[-2].label == "step_completed:0" and len(requests) == 1


@pytest.mark.asyncio
async def test_disposal_during_a_tool_cancels_it_and_sends_nothing() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()
    wait_forever = hanging_tool(started, cancelled)

    requests: list[Any] = []
    chat = allm.stream_chat(
        engine([call("hang"), ("finish", "tool_calls")], FINAL_STEP, record=requests),
        "x",
        tools=[wait_forever],
    )
    seen: list[Any] = []
    subscription = chat.subscribe(on_next=seen.append)
    await asyncio.wait_for(started.wait(), 5)
    subscription.dispose()
    await asyncio.wait_for(cancelled.wait(), 5)
    await asyncio.sleep(0)
    assert len(requests) == 1 and not any(isinstance(e, StepCompleted) for e in seen)


def test_filters_apply_to_step_events_but_the_result_is_whole() -> None:
    events: list[Any] = []
    chat = allm.stream_chat(
        engine(TOOL_STEP, [("text", "a"), ("text", "b"), ("usage", {"input_tokens": 3}), ("finish", "stop")]),
        "x",
        tools=[add],
        emit_text_deltas=False,
        on_event=events.append,
    )
    records = record_events(chat, TestScheduler())
    labels = [r.label for r in records]
    assert "text_delta:a" not in labels and "raw_chunk:usage" in labels
    assert [e.type for e in events].count("text_delta") == 2  # on_event sees everything
    assert "chat_completed:completed" in [e.type + ":completed" for e in events if e.type == "chat_completed"]
    assert records[-2].value.result.output_text == "ab"


def test_usage_is_summed_and_none_only_if_never_reported() -> None:
    step1 = [call("add", a=1), ("usage", {"input_tokens": 10, "output_tokens": 2}), ("finish", "tool_calls")]
    step2 = [
        ("text", "3"),
        ("usage", {"input_tokens": 20, "output_tokens": 1, "reasoning_tokens": 4}),
        ("finish", "stop"),
    ]
    usage = allm.chat_sync(engine(step1, step2), "x", tools=[add]).usage
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens, usage.cached_input_tokens) == (
        30,
        3,
        4,
        None,
    )


def test_every_chat_event_round_trips_through_json() -> None:
    step = [call("add", "c1", a=1), call("nope", "c2"), ("finish", "tool_calls")]
    records = record_events(allm.stream_chat(engine(step, FINAL_STEP), "x", tools=[add]), TestScheduler())
    events = [r.value for r in records if r.kind == "N"]
    assert {e.type for e in events} >= {"tool_execution_started", "step_completed", "chat_completed"}
    for event in events:
        assert allm.parse_event(event.model_dump(mode="json")) == event
        assert allm.parse_event(event.model_dump_json()) == event


def test_the_same_observable_replays_per_subscription() -> None:
    # Each subscription resends the first request (built once by stream_chat) and goes on with
    # the engine's next scripts: [0, 1] then [0, 2].
    eng = engine(TOOL_STEP, FINAL_STEP, FINAL_STEP)
    chat = allm.stream_chat(eng, "x", tools=[add])
    first = record_events(chat, TestScheduler())
    second = record_events(chat, TestScheduler())
    assert timeline_of(first) == timeline_of(second)


@pytest.mark.asyncio
async def test_cancelling_the_awaiting_task_disposes_the_chat() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()
    requests: list[Any] = []
    eng = engine([call("hang"), ("finish", "tool_calls")], FINAL_STEP, record=requests)
    task = asyncio.ensure_future(allm.chat(eng, "x", tools=[hanging_tool(started, cancelled)]))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 5)
    assert len(requests) == 1
