"""The marble helpers of ``rx_allm.testing`` (virtual time only); docs/testing.md: test_docs_examples.py."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import operators as ops
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import TestScheduler

import rx_allm as allm
from rx_allm.events import MessageStarted, TextDelta
from rx_allm.testing import (
    CleanupCounter,
    Recorded,
    assert_completed,
    assert_error,
    fake_engine,
    record_events,
    script_from_marbles,
    timeline,
)

REQ = allm.request([allm.user("hi")])
CALL = ("tool_call", {"id": "c1", "name": "lookup", "arguments": {"q": "rx"}})


def run(script: list[Any], **options: Any) -> list[Recorded]:
    return record_events(allm.stream_generate(fake_engine(script), REQ, **options))


# -- script_from_marbles -------------------------------------------------------------------------
def test_dashes_and_elements_become_delays_and_text() -> None:
    assert script_from_marbles("-a--b-|", {"a": "Hel", "b": "lo"}) == [
        ("delay", 1.0),
        ("text", "Hel"),
        ("delay", 3.0),
        ("text", "lo"),
        ("delay", 2.0),
        ("finish", "stop"),
    ]


def test_unmapped_elements_are_their_own_text_and_last_as_many_ticks_as_characters() -> None:
    assert script_from_marbles("hey-you|") == [
        ("text", "hey"),
        ("delay", 4.0),
        ("text", "you"),
        ("delay", 3.0),
        ("finish", "stop"),
    ]


def test_groups_tuples_timespan_and_finish() -> None:
    usage = ("usage", {"input_tokens": 3, "output_tokens": 2})
    script = script_from_marbles("(a,t) -u|", {"t": CALL, "u": usage}, timespan=0.5, finish="tool_calls")
    # a group is emitted at its "(" and lasts as many ticks as it has characters (5 here)
    assert script == [("text", "a"), CALL, ("delay", 3.0), usage, ("delay", 0.5), ("finish", "tool_calls")]


def test_hash_is_an_error_entry() -> None:
    assert script_from_marbles("a#") == [("text", "a"), ("delay", 1.0), ("error", "provider_unavailable")]
    assert script_from_marbles("a#", error="rate_limited")[-1] == ("error", "rate_limited")
    entry = ("stream_error", "truncated", {})
    assert script_from_marbles("a#", error=entry)[-1] == entry


@pytest.mark.parametrize(
    ("marbles", "message"),
    [
        ("-a--", "never ends"),
        ("-a|-b", "after a # or | symbol"),
        ("-1|", "neither text nor a script entry"),
    ],
)
def test_bad_diagrams_are_refused(marbles: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        script_from_marbles(marbles)


# -- record_events and timeline -------------------------------------------------------------------
def test_a_diagram_plays_at_its_virtual_times() -> None:
    records = run(script_from_marbles("-a--b-|", {"a": "Hel", "b": "lo"}))
    assert timeline(records) == [
        (0.0, "message_started"),
        (1.0, "text_delta:Hel"),
        (4.0, "text_delta:lo"),
        (6.0, "text_completed:Hello"),
        (6.0, "message_completed:stop"),
        (6.0, "completed"),
    ]
    assert_completed(records, at=6.0)


def test_labels_name_tool_calls_usage_and_raw_chunks() -> None:
    usage = ("usage", {"input_tokens": 3, "output_tokens": 2})
    delta = ("tool_call_delta", {"id": "c1", "arguments_delta": '{"q"'})
    script = script_from_marbles("(d,t)-u|", {"d": delta, "t": CALL, "u": usage}, finish="tool_calls")
    assert timeline(run(script, emit_tool_deltas=True)) == [
        (0.0, "message_started"),
        (0.0, 'tool_call_delta:{"q"'),
        (0.0, "tool_call_started:lookup"),
        (0.0, "tool_call_completed:lookup"),
        (7.0, "raw_chunk:usage"),
        (7.0, "message_completed:tool_calls"),
        (7.0, "completed"),
    ]


def test_fractional_timespans_compare_exactly_in_the_timeline() -> None:
    records = run(script_from_marbles("-a-b-c|", timespan=0.1))
    assert [t for t, label in timeline(records) if label.startswith("text_delta")] == [0.1, 0.3, 0.5]


def test_records_expose_kind_value_and_error() -> None:
    records = run(script_from_marbles("a#", error="timeout"))
    first, *_, last = records
    assert (first.kind, first.value, first.error) == (
        "N",
        MessageStarted(metadata={"provider": "fake"}),
        None,
    )
    assert isinstance(first.notification, OnNext)
    assert last.kind == "E" and isinstance(last.notification, OnError) and last.value is None
    assert isinstance(last.error, allm.AdapterError) and last.error.reason == "timeout"
    assert last.label == "error:AdapterError:timeout"
    time, notification = last  # a (time, notification) pair
    assert time == 1.0 and notification is last.notification


def test_plain_values_of_a_pipeline_are_labelled_as_themselves() -> None:
    engine = fake_engine(script_from_marbles("-a-b|", {"a": "Hel", "b": "lo"}))
    pipeline = allm.stream_generate(engine, REQ).pipe(
        ops.filter(lambda event: isinstance(event, TextDelta)),
        ops.scan(lambda text, event: text + event.delta, ""),
        ops.map(lambda text: text if text.endswith("lo") else len(text)),
    )
    records = record_events(pipeline)
    assert timeline(records) == [(1.0, "3"), (3.0, "Hello"), (4.0, "completed")]
    assert isinstance(records[-1].notification, OnCompleted)


def test_subscribe_and_dispose_times_on_a_given_scheduler() -> None:
    scheduler = TestScheduler()
    cleanup = CleanupCounter(clock=lambda: scheduler.clock)
    engine = fake_engine(script_from_marbles("-a-----b|"), cleanup=cleanup)
    records = record_events(allm.stream_generate(engine, REQ), scheduler, subscribe_at=10.0, dispose_at=13.0)
    assert timeline(records) == [(10.0, "message_started"), (11.0, "text_delta:a")]
    assert cleanup.ends == [("disposed", 13.0)]
    assert (cleanup.count(), cleanup.count("disposed"), cleanup.count("completed")) == (1, 1, 0)


def test_each_record_events_call_subscribes_once() -> None:
    cleanup = CleanupCounter()
    engine = fake_engine([("text", "x"), ("finish", "stop")], cleanup=cleanup)
    events = allm.stream_generate(engine, REQ)
    record_events(events)
    record_events(events)
    assert [how for how, _ in cleanup.ends] == ["completed", "completed"]


def test_fake_engine_passes_adapter_options() -> None:
    engine = fake_engine([("text", "x")], usage={"output_tokens": 9})
    assert engine.adapter == "fake"
    assert timeline(record_events(allm.stream_generate(engine, REQ)))[-3] == (0.0, "raw_chunk:usage")


# -- assertion helpers ------------------------------------------------------------------------------
def test_assert_error_checks_type_reason_and_time() -> None:
    records = run(script_from_marbles("-a-#", error=("stream_error", "truncated", {})))
    error = assert_error(records, allm.StreamError, "truncated", at=3.0)
    assert isinstance(error, allm.StreamError)
    with pytest.raises(AssertionError, match="expected AdapterError"):
        assert_error(records, allm.AdapterError)  # same printed form, other type
    with pytest.raises(AssertionError, match="expected reason 'malformed_event'"):
        assert_error(records, allm.StreamError, "malformed_event")
    with pytest.raises(AssertionError, match=r"at 2\.0, got it at 3\.0"):
        assert_error(records, allm.StreamError, at=2.0)
    with pytest.raises(AssertionError, match="expected one on_completed at the end"):
        assert_completed(records)


def test_assert_completed_refuses_an_unfinished_stream() -> None:
    records = record_events(
        allm.stream_generate(fake_engine(script_from_marbles("a---|")), REQ), dispose_at=2.0
    )
    with pytest.raises(AssertionError, match="expected one on_completed"):
        assert_completed(records)
    with pytest.raises(AssertionError, match="expected one on_error"):
        assert_error(records, Exception)
    assert_completed(run(script_from_marbles("a|")), at=1.0)
    with pytest.raises(AssertionError, match=r"expected on_completed at 5\.0"):
        assert_completed(run(script_from_marbles("a|")), at=5.0)
