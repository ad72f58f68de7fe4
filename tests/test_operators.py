"""``coalesce_text``: marble diagrams on virtual time, a property, and real streams.

Marbles use one virtual second per character (subscription at 200). Letters are text
deltas of that letter; ``s``, ``t`` and ``m`` are ``message_started``,
``tool_call_started`` and ``message_completed``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops
from reactivex.abc import DisposableBase
from reactivex.disposable import Disposable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

import rx_allm as allm
from rx_allm.events import Event, MessageCompleted, MessageStarted, TextDelta, ToolCallStarted
from rx_allm.models import Message
from rx_allm.testing.emulator import ProviderEmulator, Reply

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe

S = MessageStarted()
T = ToolCallStarted(id="call_1", name="lookup")
M = MessageCompleted(message=Message(role="assistant", content="abcde"), finish_reason="stop")
LOOKUP: dict[str | float, Any] = {
    **{c: TextDelta(delta=c) for c in "abcde"},
    "s": S,
    "t": T,
    "m": M,
    "x": TextDelta(delta="ab"),
    "y": TextDelta(delta="cd"),
}


def text(delta: str, id: str | None = None) -> TextDelta:
    return TextDelta(delta=delta, id=id)


# -- marble diagrams ---------------------------------------------------------------------------
def test_deltas_within_a_window_become_one_delta_when_it_closes() -> None:
    with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
        source = cold("a-b---c-d-e---|", LOOKUP)
        expected = exp("---x-----y---e|", LOOKUP)
        results = start(source.pipe(allm.coalesce_text(3)))
    assert results == expected


def test_a_batch_of_one_is_the_original_event() -> None:
    delta = text("solo")
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, delta), on_completed(250))
    results = scheduler.start(lambda: source.pipe(allm.coalesce_text(5)))
    assert results.messages == [on_next(215, delta), on_completed(250)]
    assert results.messages[0].value.value is delta


def test_other_events_flush_pending_text_first_and_pass_unchanged() -> None:
    with marbles_testing(timespan=1.0) as (start, cold, _hot, _exp):
        source = cold("s-a-b-t---c-m|", LOOKUP)
        results = start(source.pipe(allm.coalesce_text(5)))
    assert results == [
        on_next(200, S),
        on_next(206, text("ab")),  # flushed by the tool call, before its window closed
        on_next(206, T),
        on_next(212, text("c")),
        on_next(212, M),
        on_completed(213),
    ]
    passed = [r.value.value for r in results if r.value.kind == "N" and r.value.value.type != "text_delta"]
    assert passed[0] is S and passed[1] is T and passed[2] is M


def test_completion_flushes_pending_text() -> None:
    with marbles_testing(timespan=1.0) as (start, cold, _hot, _exp):
        results = start(cold("a-b|", LOOKUP).pipe(allm.coalesce_text(10)))
    assert results == [on_next(203, text("ab")), on_completed(203)]


def test_text_before_an_error_is_delivered_before_the_error() -> None:
    error = allm.AdapterError("network_error", "connection reset mid-stream", provider="openai")
    with marbles_testing(timespan=1.0) as (start, cold, _hot, _exp):
        results = start(cold("a-b#", LOOKUP, error).pipe(allm.coalesce_text(10)))
    assert [(r.time, r.value.kind) for r in results] == [(203, "N"), (203, "E")]
    assert results[0].value.value == text("ab")
    assert results[1].value.exception is error


def test_a_delta_with_another_id_flushes_the_batch() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(210, text("a", "block-1")),
        on_next(211, text("b", "block-1")),
        on_next(212, text("c", "block-2")),
        on_next(213, text("d", "block-2")),
        on_completed(230),
    )
    results = scheduler.start(lambda: source.pipe(allm.coalesce_text(5)))
    assert results.messages == [
        on_next(212, text("ab", "block-1")),
        on_next(217, text("cd", "block-2")),
        on_completed(230),
    ]


class TimerLog(TestScheduler):
    """A TestScheduler that keeps the disposable of every relative timer it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[DisposableBase] = []

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> DisposableBase:
        timer = super().schedule_relative(duetime, action, state)
        self.timers.append(timer)
        return timer


def test_disposal_drops_pending_text_cancels_the_timer_and_unsubscribes() -> None:
    scheduler = TimerLog()
    source = scheduler.create_hot_observable(
        on_next(210, text("a")), on_next(212, text("b")), on_next(220, text("c")), on_completed(230)
    )
    results = scheduler.start(lambda: source.pipe(allm.coalesce_text(5)), disposed=213)
    assert results.messages == []
    assert source.subscriptions == [subscribe(200, 213)]
    assert len(scheduler.timers) == 1 and scheduler.timers[0].is_disposed  # type: ignore[attr-defined]


def test_flushes_before_the_window_cancel_its_timer() -> None:
    scheduler = TimerLog()
    source = scheduler.create_hot_observable(
        on_next(210, text("a")), on_next(211, T), on_next(212, text("b")), on_completed(213)
    )
    results = scheduler.start(lambda: source.pipe(allm.coalesce_text(5)))
    assert results.messages == [
        on_next(211, text("a")),
        on_next(211, T),
        on_next(213, text("b")),
        on_completed(213),
    ]
    assert len(scheduler.timers) == 2 and all(t.is_disposed for t in scheduler.timers)  # type: ignore[attr-defined]


class UncancellableTimers(TestScheduler):
    """Timers that still fire after disposal (cancellation is best effort across threads)."""

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> DisposableBase:
        super().schedule_relative(duetime, action, state)
        return Disposable()


def test_a_stale_timer_does_not_cut_the_next_window_short() -> None:
    scheduler = UncancellableTimers()
    delta = text("a")  # the same event object twice: a window is not known by its first event
    source = scheduler.create_hot_observable(
        on_next(210, delta), on_next(211, T), on_next(212, delta), on_completed(230)
    )
    results = scheduler.start(lambda: source.pipe(allm.coalesce_text(5)))
    assert results.messages == [
        on_next(211, delta),
        on_next(211, T),
        on_next(217, delta),  # not at 215, when the first window's timer fired anyway
        on_completed(230),
    ]


def test_explicit_scheduler_wins_over_the_subscribe_scheduler() -> None:
    timers = TimerLog()
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, text("a")), on_completed(230))
    results = scheduler.start(lambda: source.pipe(allm.coalesce_text(5, timers)))
    assert len(timers.timers) == 1
    assert results.messages == [on_next(230, text("a")), on_completed(230)]  # its timer never ran


def test_a_subscriber_failing_on_a_timed_flush_stops_the_stream() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, text("a")), on_next(220, text("b")))
    seen: list[Event] = []

    def render(event: Event) -> None:
        seen.append(event)
        raise RuntimeError("view is gone")

    coalesced = source.pipe(allm.coalesce_text(5))
    scheduler.schedule_absolute(200, lambda *_: coalesced.subscribe(on_next=render, scheduler=scheduler))
    with pytest.raises(RuntimeError, match="view is gone"):
        scheduler.start()
    assert seen == [text("a")]
    assert source.subscriptions == [subscribe(200, 215)]


@pytest.mark.parametrize("window", [0, -1.0, True, "1"])
def test_window_must_be_a_positive_number(window: Any) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        allm.coalesce_text(window)


# -- the property: nothing lost, nothing reordered, nothing held longer than the window --------
SOURCE_ITEMS = st.lists(
    st.tuples(st.integers(0, 4), st.one_of(st.text(min_size=1, max_size=3), st.sampled_from([S, T]))),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(items=SOURCE_ITEMS, window=st.integers(1, 6), fails=st.booleans())
def test_text_is_never_lost_reordered_or_held_past_the_window(
    items: list[tuple[int, str | Event]], window: int, fails: bool
) -> None:
    scheduler = TestScheduler()
    time, messages, arrivals = 201, [], []
    for gap, item in items:
        time += gap
        event = text(item) if isinstance(item, str) else item
        messages.append(on_next(time, event))
        arrivals.append((time, event))
    error = RuntimeError("boom")
    end = time + 1
    messages.append(on_error(end, error) if fails else on_completed(end))
    source = scheduler.create_hot_observable(*messages)

    results = scheduler.start(lambda: source.pipe(allm.coalesce_text(window)), disposed=10_000)

    assert results.messages[-1].time == end and results.messages[-1].value.kind == ("E" if fails else "C")
    out = [(r.time, r.value.value) for r in results.messages[:-1]]
    assert segments([e for _, e in out]) == segments([e for _, e in arrivals])
    pending = [(t, e.delta) for t, e in arrivals if isinstance(e, TextDelta)]
    for emitted_at, event in out:
        if not isinstance(event, TextDelta):
            continue
        first_at, received = pending[0][0], ""
        while received != event.delta:  # the source deltas this one merged
            received += pending.pop(0)[1]
        assert first_at <= emitted_at <= first_at + window


def segments(events: list[Event]) -> list[Any]:
    """Runs of text joined, other events as they are: equal lists mean same text, same order."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, TextDelta):
            if out and isinstance(out[-1], str):
                out[-1] += event.delta
            else:
                out.append(event.delta)
        else:
            out.append(event)
    return out


# -- on real streams ------------------------------------------------------------------------------
def test_fake_stream_on_virtual_time() -> None:
    script = [("text", "Hel"), ("text", "lo"), ("delay", 2), ("text", ","), ("delay", 4), ("text", " you")]
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [*script, ("finish", "stop")]})
    scheduler = TestScheduler()
    events = allm.stream_generate(engine, allm.request([allm.user("hi")]))
    results = scheduler.start(lambda: events.pipe(allm.coalesce_text(3)))
    seen = [
        (r.time, r.value.value.type, getattr(r.value.value, "delta", None)) for r in results.messages[:-1]
    ]
    assert seen == [
        (200, "message_started", None),
        (203, "text_delta", "Hello,"),
        (206, "text_delta", " you"),  # flushed by text_completed, before its window closed
        (206, "text_completed", None),
        (206, "message_completed", None),
    ]


KEY = "sk-test-coalesce-0123456789"
WORDS = " ".join(f"w{i}" for i in range(200))


def emulator_engine(emu: ProviderEmulator) -> allm.Engine:
    return allm.Engine(
        adapter="anthropic", adapter_opts={"base_url": emu.base_url("anthropic"), "api_key": KEY}, model="m"
    )


@pytest.mark.asyncio
async def test_http_stream_coalesced_on_the_running_loop(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text=WORDS, rechunk_seed=7, max_chunk=40))
    threads: set[str] = set()

    def seen(event: Event) -> None:
        threads.add(threading.current_thread().name)

    events = allm.stream_generate(emulator_engine(emulator), allm.request([allm.user("hi")]))
    coalesced = events.pipe(allm.coalesce_text(0.05), ops.do_action(seen), ops.to_list())
    received: list[Event] = await asyncio.wait_for(coalesced_list(coalesced), 5.0)
    deltas = [e for e in received if isinstance(e, TextDelta)]
    assert "".join(d.delta for d in deltas) == WORDS
    assert 1 <= len(deltas) < 200  # the 200 word deltas arrived in far fewer batches
    assert isinstance(received[-1], MessageCompleted) and received[-1].message.content == WORDS
    assert threads == {threading.current_thread().name}


async def coalesced_list(source: Observable[list[Event]]) -> list[Event]:
    future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
    source.subscribe(on_next=future.set_result, on_error=future.set_exception)
    return await future


def test_http_stream_coalesced_from_sync_code_runs_on_the_library_loop() -> None:
    threads: set[str] = set()
    received: list[Event] = []
    done = threading.Event()

    def on_next(event: Event) -> None:
        threads.add(threading.current_thread().name)
        received.append(event)

    with ProviderEmulator(default=Reply(text=WORDS, chunk_delay=0.001)).running() as emu:
        events = allm.stream_generate(emulator_engine(emu), allm.request([allm.user("hi")]))
        events.pipe(allm.coalesce_text(0.02)).subscribe(on_next=on_next, on_completed=done.set)
        assert done.wait(10.0)
    deltas = [e for e in received if isinstance(e, TextDelta)]
    assert "".join(d.delta for d in deltas) == WORDS and len(deltas) < 200
    assert threads == {"rx_allm-loop"}  # timed flushes included: the timer runs on the stream's loop
