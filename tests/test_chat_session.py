"""Sessions: status transitions, resuming after tools and questions, JSON round trips, disposal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rx_allm as allm
from rx_allm.events import StepCompleted
from rx_allm.orchestration import ChatCollector, fold_chat
from rx_allm.testing import record_events, script_from_marbles


def engine(*scripts: list[Any], **opts: Any) -> allm.Engine:
    return allm.Engine(adapter="fake", adapter_opts={"scripts": [list(s) for s in scripts], **opts})


def call(name: str, call_id: str = "c1", **arguments: Any) -> tuple[str, dict[str, Any]]:
    return ("tool_call", {"id": call_id, "name": name, "arguments": arguments})


@allm.tool(manual=True)
def approve(amount: int) -> str:
    """A human approves."""
    raise AssertionError("run by the caller")


@allm.tool
def book(city: str) -> str:
    """Books a trip, asking for the date."""
    raise allm.AskUser(f"When do you go to {city}?", choices=["today", "tomorrow"])


def test_manual_calls_then_submit_then_continue() -> None:
    requests: list[Any] = []
    eng = engine(
        [call("approve", amount=5), ("finish", "tool_calls")],
        [("text", "done"), ("finish", "stop")],
        record=requests,
    )
    session = allm.Session()
    assert session.status == "idle"
    records = record_events(session.stream_reply(eng, "pay 5", tools=[approve]), TestScheduler())
    assert records[-1].kind == "C"
    assert session.status == "awaiting_tools" and session.halted_reason == "manual_tool_calls"
    assert [c.id for c in session.pending_tool_calls] == ["c1"]
    with pytest.raises(allm.ValidationError):
        session.stream_reply(eng, "hello?")
    with pytest.raises(allm.ValidationError):
        asyncio.run(session.reply(eng, "hello?"))
    with pytest.raises(allm.ValidationError):
        session.submit_tool_results({"zz": 1})
    session.submit_tool_results({"c1": {"approved": True}})
    assert session.status == "idle" and session.thread.messages[-1].content == '{"approved": true}'
    record_events(session.stream_reply(eng, tools=[approve]), TestScheduler())
    assert session.status == "completed" and session.thread.messages[-1].text == "done"
    assert [m.role for m in requests[1][0].messages] == ["user", "assistant", "tool"]


def test_ask_user_then_answer_then_continue_after_a_json_round_trip() -> None:
    eng = engine(
        [call("book", city="Oslo"), ("finish", "tool_calls")], [("text", "booked"), ("finish", "stop")]
    )
    session = allm.Session()
    record_events(session.stream_reply(eng, "book Oslo", tools=[book]), TestScheduler())
    assert session.status == "awaiting_user" and session.question is not None
    assert (
        session.question.question == "When do you go to Oslo?"
        and session.question.opts["choices"][0] == "today"
    )

    restored = allm.Session.model_validate_json(session.model_dump_json())
    assert restored == session
    restored.answer("tomorrow")
    assert restored.status == "idle" and restored.thread.messages[-1].tool_call_id == "c1"
    with pytest.raises(allm.ValidationError):
        restored.answer("again")
    record_events(restored.stream_reply(eng, tools=[book]), TestScheduler())
    assert restored.status == "completed" and restored.thread.messages[-1].text == "booked"
    assert [m.role for m in restored.thread.messages] == ["user", "assistant", "tool", "assistant"]


def test_disposal_leaves_the_session_consistent() -> None:
    step2 = script_from_marbles("--x--|", {"x": "slow"})
    eng = engine([call("ping"), ("finish", "tool_calls")], step2)

    @allm.tool
    def ping() -> str:
        """Pong."""
        return "pong"

    session = allm.Session()
    record_events(session.stream_reply(eng, "hi", tools=[ping]), TestScheduler(), dispose_at=1.0)
    assert session.halted_reason == "cancelled" and session.status == "idle"
    assert [m.role for m in session.thread.messages] == [
        "user",
        "assistant",
        "tool",
    ]  # the last completed step
    assert allm.Session.model_validate_json(session.model_dump_json()) == session


def test_disposal_before_any_step_keeps_the_user_message() -> None:
    session = allm.Session()
    stream = session.stream_reply(engine(script_from_marbles("--x|", {"x": "a"})), "hi")
    record_events(stream.pipe(ops.take(1)), TestScheduler())
    assert session.halted_reason == "cancelled" and [m.text for m in session.thread.messages] == ["hi"]


def test_an_error_sets_the_error_status_and_a_reply_retries() -> None:
    eng = engine([("error", "rate_limited")], [("text", "ok"), ("finish", "stop")])
    session = allm.Session()
    record_events(session.stream_reply(eng, "hi"), TestScheduler())
    assert session.status == "error" and isinstance(session.error, allm.AdapterError)
    assert allm.Session.model_validate_json(session.model_dump_json()).error == session.error
    record_events(session.stream_reply(eng), TestScheduler())
    assert session.status == "completed" and session.error is None


@pytest.mark.asyncio
async def test_reply_returns_the_chat_result_and_the_session_follows_steps() -> None:
    @allm.tool
    async def ping() -> str:
        """Pong."""
        return "pong"

    eng = engine([call("ping"), ("finish", "tool_calls")], [("text", "fine"), ("finish", "stop")])
    session = allm.Session()
    threads: list[int] = []
    stream = session.stream_reply(eng, "hi", tools=[ping])
    result = await fold_chat(
        stream.pipe(
            ops.do_action(
                lambda e: (
                    threads.append(len(session.thread.messages)) if isinstance(e, StepCompleted) else None
                )
            )
        ),
        ChatCollector(),
    )
    assert result.halted_reason == "completed" and threads == [3, 4]
    again = await session.reply(engine([("text", "again"), ("finish", "stop")]), "more")
    assert again.output_text == "again" and len(session.thread.messages) == 6


def test_the_session_changes_only_when_the_reply_is_subscribed() -> None:
    session = allm.Session()
    stream = session.stream_reply(engine([("text", "hi"), ("finish", "stop")]), "hello")
    assert session.thread.messages == [] and session.status == "idle"
    record_events(stream, TestScheduler())
    assert [m.role for m in session.thread.messages] == ["user", "assistant"]
    assert session.status == "completed"
