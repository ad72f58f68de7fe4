"""Marble-diagram tests of your own pipeline: the Fake adapter on a TestScheduler, in virtual time.

The pipeline under test is what a chat view shows of a generation: text batched so the
view repaints at most once per window (``allm.coalesce_text``), cut short by a Stop
button (``take_until``: it disposes the stream, which cancels the request), and a failure
shown as a last line with its typed reason (``catch``) instead of breaking the view.

A diagram character lasts one virtual second: ``"-a-b|"`` is text ``a`` at 1 s, ``b`` at
3 s and the finish at 4 s. Nothing here sleeps: the scheduler's clock jumps from one
scheduled action to the next. Run with ``pytest examples/test_marble_pipeline.py``.
"""

from __future__ import annotations

from typing import Any

import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

import rx_allm as allm
from rx_allm.testing import (
    CleanupCounter,
    assert_completed,
    fake_engine,
    record_events,
    script_from_marbles,
    timeline,
)

PROMPT = allm.request([allm.user("hello")])


# -- the pipeline under test (yours would live in your application) ------------------
def view_updates(events: Observable[allm.Event], stop: Observable[Any], window: float) -> Observable[str]:
    """The text a chat view appends: batched per ``window`` seconds, ended by ``stop``, failures shown."""

    def show_failure(error: Exception, _: Observable[str]) -> Observable[str]:
        return reactivex.of(f" [{getattr(error, 'reason', 'error')}]")

    text: Observable[str] = events.pipe(
        ops.take_until(stop),
        allm.coalesce_text(window),
        ops.map(lambda event: event.delta if isinstance(event, allm.TextDelta) else ""),
        ops.filter(bool),  # only the text
    )
    return text.pipe(ops.catch(show_failure))


def never_pressed() -> Observable[Any]:
    return reactivex.never()


# -- the tests -----------------------------------------------------------------------
def test_deltas_are_batched_into_one_repaint_per_window() -> None:
    engine = fake_engine(script_from_marbles("-a-b-c---d|"))  # a@1 b@3 c@5 d@9, finished@10
    updates = view_updates(allm.stream_generate(engine, PROMPT), never_pressed(), window=2.5)

    records = record_events(updates)

    # a opens a window at 1 that closes at 3.5 with b in it; c opens 5..7.5; d is flushed by the finish
    assert timeline(records) == [(3.5, "ab"), (7.5, "c"), (10.0, "d"), (10.0, "completed")]


def test_stop_ends_the_view_and_disposes_the_generation() -> None:
    scheduler = TestScheduler()
    cleanup = CleanupCounter(clock=lambda: scheduler.clock)
    engine = fake_engine(script_from_marbles("-a-b-c---d|"), cleanup=cleanup)
    stop_button = scheduler.create_hot_observable(ReactiveTest.on_next(4, "click"))
    updates = view_updates(allm.stream_generate(engine, PROMPT), stop_button, window=2.5)

    records = record_events(updates, scheduler)

    assert timeline(records) == [(3.5, "ab"), (4.0, "completed")]
    # the Fake saw the disposal at the click: an HTTP adapter would cancel its request there
    assert cleanup.ends == [("disposed", 4.0)]


def test_text_pending_at_stop_is_shown_before_the_end() -> None:
    scheduler = TestScheduler()
    engine = fake_engine(script_from_marbles("-a-b-c---d|"))
    stop_button = scheduler.create_hot_observable(ReactiveTest.on_next(6, "click"))
    updates = view_updates(allm.stream_generate(engine, PROMPT), stop_button, window=2.5)

    assert timeline(record_events(updates, scheduler)) == [(3.5, "ab"), (6.0, "c"), (6.0, "completed")]


def test_a_failure_becomes_a_last_line_with_its_reason() -> None:
    engine = fake_engine(script_from_marbles("-a-b--#", error="rate_limited"))
    updates = view_updates(allm.stream_generate(engine, PROMPT), never_pressed(), window=10)

    records = record_events(updates)

    # the text received before the error is flushed first, then the reason, and the view completes
    assert timeline(records) == [(6.0, "ab"), (6.0, " [rate_limited]"), (6.0, "completed")]
    assert_completed(records, at=6.0)


def test_the_generation_runs_once_and_ends_cleanly() -> None:
    scheduler = TestScheduler()
    cleanup = CleanupCounter(clock=lambda: scheduler.clock)
    engine = fake_engine(script_from_marbles("-a|"), cleanup=cleanup)
    updates = view_updates(allm.stream_generate(engine, PROMPT), never_pressed(), window=5)

    assert timeline(record_events(updates, scheduler)) == [(2.0, "a"), (2.0, "completed")]
    assert cleanup.ends == [("completed", 2.0)]  # one subscription, one request
