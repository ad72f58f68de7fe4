"""Marble-diagram tests of Fake streams through ``stream_generate`` on virtual time.

``TestScheduler`` keeps its clock in float seconds: ``("delay", s)`` is scheduled with
``schedule_relative(s, ...)``, so an event after a delay of ``s`` is recorded at
``subscribed + s`` (subscription at 200.0 by default).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from reactivex.notification import OnError
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

import rx_allm as allm
from rx_allm.events import (
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallStarted,
)
from rx_allm.models import Message, ToolCall, Usage

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed

REQ = allm.request([allm.user("hello")])


def fake_engine(script: list[Any], cleanup: list[str] | None = None, **opts: Any) -> allm.Engine:
    adapter_opts: dict[str, Any] = {"script": script, **opts}
    if cleanup is not None:
        adapter_opts["cleanup_observer"] = cleanup.append
    return allm.Engine(adapter="fake", adapter_opts=adapter_opts)


#: The Fake's metadata on message_started and on a message_completed that finished with "stop".
STARTED = {"provider": "fake"}
COMPLETED = {"provider": "fake", "native_finish_reason": "stop"}


def kinds(messages: list[Any]) -> list[str]:
    """Notification kinds with the event type for on_next: ``["N:text_delta", ..., "C"]``."""
    out = []
    for m in messages:
        kind = m.value.kind
        out.append(f"N:{m.value.value.type}" if kind == "N" else kind)
    return out


def times(messages: list[Any]) -> list[float]:
    return [m.time for m in messages]


# -- timing ------------------------------------------------------------------
def test_fake_delays_give_exact_virtual_times() -> None:
    cleanup: list[str] = []
    script = [
        ("text", "a"),
        ("delay", 5),
        ("tool_call", {"id": "c1", "name": "lookup", "arguments": {"q": 1}}),
        ("delay", 2.5),
        ("text", "b"),
        ("usage", {"input_tokens": 3, "output_tokens": 2}),
        ("finish", "stop"),
    ]
    engine = fake_engine(script, cleanup)
    scheduler = TestScheduler()
    results = scheduler.start(lambda: allm.stream_generate(engine, REQ))

    call = ToolCall(id="c1", name="lookup", arguments={"q": 1}, raw_arguments=json.dumps({"q": 1}))
    usage = Usage(input_tokens=3, output_tokens=2)
    assert results.messages == [
        on_next(200, MessageStarted(metadata=STARTED)),
        on_next(200, TextDelta(id="text_1", delta="a")),
        on_next(205, TextCompleted(id="text_1", text="a")),  # a tool call ends the text block
        on_next(205, ToolCallStarted(id="c1", name="lookup")),
        on_next(205, ToolCallCompleted(id="c1", name="lookup", arguments={"q": 1}, raw_arguments='{"q": 1}')),
        on_next(207.5, TextDelta(id="text_2", delta="b")),
        on_next(207.5, TextCompleted(id="text_2", text="b")),
        on_next(207.5, RawChunk(kind="usage", data=usage)),
        on_next(
            207.5,
            MessageCompleted(
                message=Message(role="assistant", content="ab", tool_calls=[call]),
                finish_reason="stop",
                metadata=COMPLETED,
            ),
        ),
        on_completed(207.5),
    ]
    assert cleanup == ["completed"]


def test_fake_times_follow_the_subscription_time() -> None:
    engine = fake_engine([("delay", 1), ("text", "x"), ("delay", 0.25), ("finish", "length")])
    scheduler = TestScheduler()
    results = scheduler.start(
        lambda: allm.stream_generate(engine, REQ), created=50, subscribed=300, disposed=900
    )
    assert times(results.messages) == [300, 301, 301.25, 301.25, 301.25]
    assert kinds(results.messages) == [
        "N:message_started",
        "N:text_delta",
        "N:text_completed",
        "N:message_completed",
        "C",
    ]
    assert results.messages[-2].value.value.finish_reason == "length"


def test_fake_stream_as_marble_diagram() -> None:
    engine = fake_engine([("text", "a"), ("delay", 10), ("text", "b"), ("finish", "stop")])
    lookup = {
        "s": MessageStarted(metadata=STARTED),
        "a": TextDelta(id="text_1", delta="a"),
        "b": TextDelta(id="text_1", delta="b"),
        "t": TextCompleted(id="text_1", text="ab"),
        "m": MessageCompleted(
            message=Message(role="assistant", content="ab"), finish_reason="stop", metadata=COMPLETED
        ),
    }
    with marbles_testing(timespan=1.0) as (start, _cold, _hot, exp):
        expected = exp("(s,a)-----(b,t,m,|)", lookup)
        results = start(lambda: allm.stream_generate(engine, REQ))
    assert [r.time for r in expected] == [200, 200, 210, 210, 210, 210]
    assert results == expected


def test_each_subscription_replays_the_script_on_its_own_clock() -> None:
    engine = fake_engine([("text", "a"), ("delay", 4), ("finish", "stop")])
    scheduler = TestScheduler()
    events = allm.stream_generate(engine, REQ)
    first = scheduler.create_observer()
    second = scheduler.create_observer()
    scheduler.schedule_absolute(10.0, lambda *_: events.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(12.0, lambda *_: events.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert times(first.messages) == [10, 10, 14, 14, 14]
    assert times(second.messages) == [12, 12, 16, 16, 16]
    assert kinds(first.messages) == kinds(second.messages)


# -- filters -------------------------------------------------------------------
FILTER_SCRIPT = [
    ("text", "he"),
    ("tool_call_delta", {"id": "c1", "arguments_delta": '{"a"'}),
    ("raw_chunk", "meta", {"k": 1}),
    ("delay", 1),
    ("text", "llo"),
    ("tool_call_delta", {"id": "c1", "arguments_delta": ": 1}"}),
    ("usage", {"output_tokens": 7}),
    ("finish", "stop"),
]
ALL_TYPES = [
    "message_started",
    "text_delta",
    "tool_call_delta",
    "raw_chunk",
    "text_delta",
    "tool_call_delta",
    "text_completed",
    "raw_chunk",
    "message_completed",
]


def run_filtered(**flags: Any) -> list[Any]:
    engine = fake_engine(FILTER_SCRIPT)
    scheduler = TestScheduler()
    return scheduler.start(lambda: allm.stream_generate(engine, REQ, **flags)).messages


def event_types(messages: list[Any]) -> list[str]:
    return [m.value.value.type for m in messages if m.value.kind == "N"]


def test_default_filters_drop_non_usage_raw_chunks_only() -> None:
    messages = run_filtered()
    assert event_types(messages) == [t for i, t in enumerate(ALL_TYPES) if i != 3]
    raws = [m.value.value for m in messages if m.value.kind == "N" and m.value.value.type == "raw_chunk"]
    assert raws == [RawChunk(kind="usage", data=Usage(output_tokens=7))]
    assert times(messages) == [200, 200, 200, 201, 201, 201, 201, 201, 201]
    assert messages[-1].value.kind == "C"


def test_emit_text_deltas_false_drops_text_deltas_only() -> None:
    messages = run_filtered(emit_text_deltas=False)
    types = event_types(messages)
    assert "text_delta" not in types
    assert types == [t for i, t in enumerate(ALL_TYPES) if i != 3 and t != "text_delta"]
    completed = [
        m.value.value for m in messages if m.value.kind == "N" and m.value.value.type == "text_completed"
    ]
    assert completed == [TextCompleted(id="text_1", text="hello")]


def test_emit_tool_deltas_false_drops_tool_call_deltas_only() -> None:
    messages = run_filtered(emit_tool_deltas=False)
    types = event_types(messages)
    assert types == [t for i, t in enumerate(ALL_TYPES) if i != 3 and t != "tool_call_delta"]
    assert types.count("text_delta") == 2


def test_include_raw_chunks_true_passes_every_raw_chunk() -> None:
    messages = run_filtered(include_raw_chunks=True)
    assert event_types(messages) == ALL_TYPES
    raws = [m.value.value for m in messages if m.value.kind == "N" and m.value.value.type == "raw_chunk"]
    assert raws == [RawChunk(kind="meta", data={"k": 1}), RawChunk(kind="usage", data=Usage(output_tokens=7))]


def test_usage_raw_chunk_passes_even_with_every_filter_on() -> None:
    messages = run_filtered(emit_text_deltas=False, emit_tool_deltas=False, include_raw_chunks=False)
    assert event_types(messages) == ["message_started", "text_completed", "raw_chunk", "message_completed"]
    assert messages[2].value.value.kind == "usage"


def test_on_event_sees_every_event_including_filtered_ones() -> None:
    engine = fake_engine(FILTER_SCRIPT)
    scheduler = TestScheduler()
    seen: list[tuple[float, str]] = []

    def on_event(event: Any) -> None:
        seen.append((scheduler.clock, event.type))

    results = scheduler.start(
        lambda: allm.stream_generate(
            engine, REQ, on_event=on_event, emit_text_deltas=False, emit_tool_deltas=False
        )
    )
    assert [t for _, t in seen] == ALL_TYPES
    assert [c for c, _ in seen] == [200, 200, 200, 200, 201, 201, 201, 201, 201]
    assert event_types(results.messages) == [
        "message_started",
        "text_completed",
        "raw_chunk",
        "message_completed",
    ]


# -- on_event raising ------------------------------------------------------------
def test_on_event_exception_becomes_on_error_and_disposes_upstream() -> None:
    cleanup: list[str] = []
    boom = RuntimeError("on_event failed")
    engine = fake_engine(
        [("text", "a"), ("delay", 5), ("text", "b"), ("delay", 1), ("text", "c"), ("finish", "stop")], cleanup
    )
    calls: list[str] = []

    def on_event(event: Any) -> None:
        calls.append(getattr(event, "delta", event.type))
        if getattr(event, "delta", None) == "b":
            raise boom

    scheduler = TestScheduler()
    results = scheduler.start(lambda: allm.stream_generate(engine, REQ, on_event=on_event))

    assert kinds(results.messages) == ["N:message_started", "N:text_delta", "E"]
    assert times(results.messages) == [200, 200, 205]
    notification = results.messages[-1].value
    assert isinstance(notification, OnError)
    assert notification.exception is boom
    assert cleanup == ["disposed"]
    # the scheduled rest of the script (at 206) never ran: on_event saw nothing after "b"
    assert calls == ["message_started", "a", "b"]


def test_on_event_exception_on_first_event_is_the_only_notification() -> None:
    cleanup: list[str] = []
    boom = ValueError("bad first event")
    engine = fake_engine([("text", "a"), ("delay", 5), ("text", "b"), ("finish", "stop")], cleanup)

    def on_event(event: Any) -> None:
        if event.type == "message_started":
            raise boom

    scheduler = TestScheduler()
    results = scheduler.start(lambda: allm.stream_generate(engine, REQ, on_event=on_event))
    assert len(results.messages) == 1
    assert results.messages[0].time == 200
    assert results.messages[0].value.exception is boom
    assert cleanup == ["disposed"]


# -- error termination -------------------------------------------------------------
ERROR_CASES = [
    pytest.param(("error", "rate_limited"), allm.AdapterError, "rate_limited", id="error"),
    pytest.param(
        ("error_event", "provider_unavailable", {"status": 529}),
        allm.AdapterError,
        "provider_unavailable",
        id="error_event",
    ),
    pytest.param(
        ("stream_error", "truncated", {"event_index": 4}), allm.StreamError, "truncated", id="stream_error"
    ),
]


@pytest.mark.parametrize(("entry", "error_type", "reason"), ERROR_CASES)
def test_error_entries_terminate_with_on_error_last(
    entry: tuple[Any, ...], error_type: type, reason: str
) -> None:
    cleanup: list[str] = []
    script = [("text", "par"), ("delay", 3), entry, ("text", "after"), ("delay", 1), ("finish", "stop")]
    engine = fake_engine(script, cleanup)
    scheduler = TestScheduler()
    results = scheduler.start(lambda: allm.stream_generate(engine, REQ))

    assert kinds(results.messages) == ["N:message_started", "N:text_delta", "E"]
    assert times(results.messages) == [200, 200, 203]
    error = results.messages[-1].value.exception
    assert isinstance(error, error_type)
    assert error.reason == reason
    assert cleanup == ["error"]


def test_error_event_carries_its_fields() -> None:
    engine = fake_engine([("error_event", "rate_limited", {"status": 429, "retry_after_ms": 1500})])
    results = TestScheduler().start(lambda: allm.stream_generate(engine, REQ))
    assert kinds(results.messages) == ["N:message_started", "E"]
    error = results.messages[-1].value.exception
    assert isinstance(error, allm.AdapterError)
    assert (error.status, error.retry_after_ms, error.provider) == (429, 1500, "fake")
    assert error.retryable


def test_unknown_scripted_error_becomes_adapter_error_unknown() -> None:
    engine = fake_engine([("error", "not-a-reason")])
    results = TestScheduler().start(lambda: allm.stream_generate(engine, REQ))
    error = results.messages[-1].value.exception
    assert isinstance(error, allm.AdapterError)
    assert error.reason == "unknown"
    assert error.cause == "not-a-reason"


# -- disposal ---------------------------------------------------------------------
def test_disposal_between_delayed_events_stops_the_stream() -> None:
    cleanup: list[str] = []
    engine = fake_engine(
        [("text", "a"), ("delay", 10), ("text", "b"), ("delay", 10), ("text", "c"), ("finish", "stop")],
        cleanup,
    )
    scheduler = TestScheduler()
    results = scheduler.start(lambda: allm.stream_generate(engine, REQ), disposed=215)

    assert kinds(results.messages) == ["N:message_started", "N:text_delta", "N:text_delta"]
    assert times(results.messages) == [200, 200, 210]
    assert cleanup == ["disposed"]
    # the scheduler ran its queue dry: the pending step at 220 was cancelled, not delivered
    assert all(m.time <= 215 for m in results.messages)


def test_disposal_after_completion_does_not_report_disposed() -> None:
    cleanup: list[str] = []
    engine = fake_engine([("delay", 2), ("text", "a"), ("finish", "stop")], cleanup)
    scheduler = TestScheduler()
    results = scheduler.start(lambda: allm.stream_generate(engine, REQ), disposed=500)
    assert results.messages[-1].value.kind == "C"
    assert results.messages[-1].time == 202
    assert cleanup == ["completed"]
