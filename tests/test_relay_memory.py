"""MemoryRelay: the relay protocol in one process, timing in virtual time (TestScheduler)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

from rx_allm.errors import AdapterError, StreamError, ValidationError
from rx_allm.events import MessageCompleted, MessageStarted, RawChunk, TextDelta
from rx_allm.models import Message
from rx_allm.relay import MemoryRelay, RedisRelay, RelayEntry

EVENTS = {
    "s": MessageStarted(),
    "a": TextDelta(id="t", delta="Hel"),
    "b": TextDelta(id="t", delta="lo"),
    "c": TextDelta(id="t", delta="!"),
    "m": MessageCompleted(message=Message(role="assistant", content="Hello!"), finish_reason="stop"),
}
ORDER = [EVENTS[k] for k in "sabcm"]


class Seen:
    """What one viewer saw, with virtual times."""

    def __init__(self, ts: TestScheduler) -> None:
        self.ts = ts
        self.entries: list[tuple[float, RelayEntry]] = []
        self.end: tuple[float, Exception | None] | None = None

    def __call__(self, source: Observable[RelayEntry]) -> Seen:
        self.subscription = source.subscribe(
            on_next=lambda e: self.entries.append((self.ts.clock, e)),
            on_error=lambda err: self._end(err),
            on_completed=lambda: self._end(None),
            scheduler=self.ts,
        )
        return self

    def _end(self, error: Exception | None) -> None:
        assert self.end is None
        self.end = (self.ts.clock, error)

    @property
    def events(self) -> list[Any]:
        return [entry.event for _, entry in self.entries]


class Tracked:
    """A source wrapper that counts subscriptions and disposals."""

    def __init__(self, source: Observable[Any]) -> None:
        self.subscriptions = 0
        self.disposals = 0
        self.observable: Observable[Any] = reactivex.create(self._subscribe)
        self._source = source

    def _subscribe(self, observer: Any, scheduler: Any = None) -> Any:
        self.subscriptions += 1
        inner = self._source.subscribe(observer, scheduler=scheduler)

        def dispose() -> None:
            self.disposals += 1
            inner.dispose()

        return Disposable(dispose)


def marbles(diagram: str, error: Exception | None = None) -> Observable[Any]:
    return reactivex.cold(diagram, timespan=1.0, lookup=EVENTS, error=error)


def start(relay: MemoryRelay, generation_id: str, source: Observable[Any], ts: TestScheduler) -> bool:
    return asyncio.run(relay.start(generation_id, source, scheduler=ts))


def test_live_viewer_and_late_viewers_from_every_position_see_the_exact_rest() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts)
    source = Tracked(marbles("s-a-b-c-m-|"))
    assert start(relay, "g1", source.observable, ts)
    live = Seen(ts)(relay.observe("g1"))
    ts.advance_to(20.0)
    assert [t for t, _ in live.entries] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert live.events == ORDER and live.end == (10.0, None)
    ids = [entry.id for _, entry in live.entries]
    assert [int(i.split("-")[0]) for i in ids] == [1, 2, 3, 4, 5]
    for k, after in enumerate([None, *ids]):
        late = Seen(ts)(relay.observe("g1", after=after))
        assert late.events == ORDER[k:] and late.end == (20.0, None)
        assert [entry.id for _, entry in late.entries] == ids[k:]
    assert source.subscriptions == 1


def test_a_viewer_joining_mid_stream_gets_the_backlog_then_live_entries_in_order() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts)
    start(relay, "g", marbles("s-a-b-c-m-|"), ts)
    ts.advance_to(3.0)
    joined = Seen(ts)(relay.observe("g"))
    resumed = Seen(ts)(relay.observe("g", after=joined.entries[0][1].id))
    ts.advance_to(30.0)
    assert [t for t, _ in joined.entries] == [3.0, 3.0, 4.0, 6.0, 8.0]
    assert joined.events == ORDER and resumed.events == ORDER[1:]


def test_the_same_typed_error_reaches_every_viewer() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts)
    failure = AdapterError("rate_limited", "slow down", provider="openai", status=429, retry_after_ms=1500)
    start(relay, "g", marbles("s-a-#", error=failure), ts)
    first = Seen(ts)(relay.observe("g"))
    ts.advance_to(10.0)
    later = Seen(ts)(relay.observe("g", after=first.entries[-1][1].id))
    assert first.end == (4.0, failure) and later.end == (10.0, failure) and later.events == []


def test_an_untyped_source_error_becomes_a_typed_stream_error() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts)
    start(relay, "g", marbles("s-#", error=RuntimeError("boom")), ts)
    ts.advance_to(5.0)
    seen = Seen(ts)(relay.observe("g"))
    assert seen.end is not None and isinstance(seen.end[1], StreamError)
    assert seen.end[1].reason == "unknown" and "boom" in seen.end[1].message


def test_stop_disposes_the_source_and_viewers_get_cancelled() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts)
    source = Tracked(marbles("s-a-b-c-m-|"))
    start(relay, "g", source.observable, ts)
    seen = Seen(ts)(relay.observe("g"))
    ts.advance_to(3.0)
    assert asyncio.run(relay.stop("g")) is True
    assert source.disposals == 1
    ts.advance_to(20.0)
    assert seen.events == ORDER[:2]
    assert seen.end is not None and isinstance(seen.end[1], StreamError) and seen.end[1].reason == "cancelled"
    assert asyncio.run(relay.stop("g")) is False  # already ended


def test_a_viewer_leaving_never_stops_the_generation() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts, idle_timeout=100.0)
    source = Tracked(marbles("s-a-b-c-m-|"))
    start(relay, "g", source.observable, ts)
    leaving = Seen(ts)(relay.observe("g"))
    ts.advance_to(3.0)
    leaving.subscription.dispose()
    ts.advance_to(9.0)
    assert source.disposals == 0 and leaving.end is None and len(leaving.entries) == 2
    ts.advance_to(20.0)
    after = Seen(ts)(relay.observe("g"))
    assert after.events == ORDER and after.end == (20.0, None)


def test_idle_timeout_cancels_a_generation_nobody_watches() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts, idle_timeout=5.0)
    source = Tracked(marbles("s" + "-" * 30 + "m|"))
    start(relay, "unwatched", source.observable, ts)
    ts.advance_to(4.0)
    assert source.disposals == 0
    ts.advance_to(5.0)
    assert source.disposals == 1
    seen = Seen(ts)(relay.observe("unwatched"))
    assert seen.end is not None and isinstance(seen.end[1], StreamError) and seen.end[1].reason == "cancelled"
    assert "idle_timeout" in seen.end[1].message


def test_idle_timeout_counts_from_the_last_viewer_leaving() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts, idle_timeout=5.0)
    source = Tracked(marbles("s" + "-" * 30 + "m|"))
    start(relay, "g", source.observable, ts)
    one, two = Seen(ts)(relay.observe("g")), Seen(ts)(relay.observe("g"))
    ts.advance_to(10.0)
    one.subscription.dispose()
    ts.advance_to(12.0)
    two.subscription.dispose()
    ts.advance_to(16.9)
    assert source.disposals == 0
    ts.advance_to(17.0)
    assert source.disposals == 1


def test_viewers_of_a_producer_that_stopped_beating_get_a_typed_timeout() -> None:
    producer_clock, viewer_clock = TestScheduler(), TestScheduler()
    relay = MemoryRelay(heartbeat_interval=1.0, heartbeat_timeout=3.0, idle_timeout=100.0)
    start(relay, "g", marbles("s-a-b-c-m-|"), producer_clock)
    producer_clock.advance_to(2.5)  # then the producer's loop stalls for good
    seen = Seen(viewer_clock)(relay.observe("g"))
    viewer_clock.advance_to(30.0)
    assert seen.events == ORDER[:2]
    assert seen.end is not None and seen.end[0] <= 6.0
    error = seen.end[1]
    assert isinstance(error, StreamError) and error.reason == "timeout"
    assert error.metadata["relay"] == "producer_lost"


def test_a_beating_producer_is_never_reported_lost() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts, heartbeat_interval=1.0, heartbeat_timeout=3.0)
    start(relay, "g", marbles("s" + "-" * 40 + "m|"), ts)
    seen = Seen(ts)(relay.observe("g"))
    ts.advance_to(60.0)
    assert seen.events == [EVENTS["s"], EVENTS["m"]] and seen.end == (42.0, None)


def test_an_event_that_cannot_be_serialised_ends_the_generation_with_a_typed_error() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts)
    bad = RawChunk(kind="custom", data=object())
    source = Tracked(reactivex.cold("s-x-a|", timespan=1.0, lookup={**EVENTS, "x": bad}))
    start(relay, "g", source.observable, ts)
    seen = Seen(ts)(relay.observe("g"))
    ts.advance_to(10.0)
    assert seen.events == [EVENTS["s"]] and source.disposals == 1
    assert seen.end is not None and isinstance(seen.end[1], StreamError)
    assert seen.end[1].reason == "malformed_event" and seen.end[1].event_index == 1


def test_starting_twice_runs_the_source_once() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts)
    first, second = Tracked(marbles("s-m|")), Tracked(marbles("s-m|"))
    assert start(relay, "g", first.observable, ts) is True
    assert start(relay, "g", second.observable, ts) is False
    assert (first.subscriptions, second.subscriptions) == (1, 0)


def test_bad_input_is_a_typed_error() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts)
    start(relay, "g", marbles("s-a-b-|"), ts)
    start(relay, "h", marbles("s-a-b-|"), ts)
    ts.advance_to(10.0)
    other = Seen(ts)(relay.observe("h")).entries[0][1].id
    unknown = Seen(ts)(relay.observe("nope"))
    assert unknown.end is not None and isinstance(unknown.end[1], ValidationError)
    assert unknown.end[1].errors == [("generation_id", "unknown generation")]
    tag = Seen(ts)(relay.observe("g")).entries[0][1].id.split("-")[1]
    for after, why in [(other, "another generation"), (f"99-{tag}", "ahead of the log")]:
        seen = Seen(ts)(relay.observe("g", after=after))
        assert seen.end is not None and isinstance(seen.end[1], ValidationError), after
        assert why in seen.end[1].message and seen.entries == []
    for bad_after in ["", "abc", "0-1", "1-2-3", 7]:
        with pytest.raises(ValidationError):
            relay.observe("g", after=bad_after)  # type: ignore[arg-type]
    for bad_id in ["", "a b", "x" * 129, None]:
        with pytest.raises(ValidationError):
            relay.observe(bad_id)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        asyncio.run(relay.stop("nope"))
    with pytest.raises(ValidationError):
        MemoryRelay(heartbeat_interval=5.0, heartbeat_timeout=2.0)


def test_retention_maxlen_and_ttl() -> None:
    ts = TestScheduler()
    relay = MemoryRelay(scheduler=ts, maxlen=3, ttl=50.0)
    start(relay, "g", marbles("s-a-b-c-m|"), ts)
    live = Seen(ts)(relay.observe("g"))
    ts.advance_to(10.0)
    ids = [entry.id for _, entry in live.entries]
    assert len(ids) == 5
    for after in [None, ids[0]]:  # the next entry they need was trimmed: an error, never a gap
        trimmed = Seen(ts)(relay.observe("g", after=after))
        assert trimmed.entries == [] and trimmed.end is not None
        assert isinstance(trimmed.end[1], ValidationError) and "retained" in trimmed.end[1].message
    kept = Seen(ts)(relay.observe("g", after=ids[1]))
    assert kept.events == ORDER[2:] and kept.end == (10.0, None)
    ts.advance_to(60.0)
    gone = Seen(ts)(relay.observe("g"))
    assert gone.end is not None and isinstance(gone.end[1], ValidationError)
    assert gone.end[1].errors == [("generation_id", "unknown generation")]


def test_observing_redis_with_no_running_loop_is_a_typed_error() -> None:
    relay = RedisRelay("redis://127.0.0.1:1/0")
    errors: list[Exception] = []
    relay.observe("g1").subscribe(on_error=errors.append)
    assert len(errors) == 1
    assert isinstance(errors[0], ValidationError)
    assert errors[0].errors == [("observe", "no running event loop")]
