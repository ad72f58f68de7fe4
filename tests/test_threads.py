"""Threads: 100 threads subscribing and disposing at once, explicit schedulers, slow subscribers.

The emulator serves from its own thread; the streams run on the library's background
loop ("rx_allm-loop") when subscribed from plain threads, on a thread's own loop when it
runs one. Every wait is bounded: a deadlock fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import connections
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.scheduler import EventLoopScheduler, ThreadPoolScheduler
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

import rx_allm as allm
from rx_allm._connections import session_for_loop
from rx_allm._loop import background_loop
from rx_allm.events import Event, MessageCompleted, TextDelta
from rx_allm.testing.emulator import ProviderEmulator, RecordedRequest, Reply

KEY = "sk-threads-0123456789abcdef"
LOOP_THREAD = "rx_allm-loop"
TEXT = "one two three four five"
JOIN_BUDGET = 30.0  # seconds for all 100 threads to finish
WAIT = 10.0  # seconds any single wait may take
REPLIES = {
    "ok": Reply(text=TEXT),
    "fail": Reply(status=503),
    "truncated": Reply(text=TEXT, truncate_after=2),
    "stall": Reply(text=TEXT, stall_after=3),  # chat: message_started, "one", " two", then silence
    "paced": Reply(text=TEXT, chunk_delay=0.02),
    "late": Reply(text=TEXT, header_delay=0.03),
    "later": Reply(text=TEXT, header_delay=0.06),
    "huge": Reply(text=["x" * 1000] * 8000),  # 8 MB: more than the socket buffers hold
}


def reply_for(request: RecordedRequest) -> Reply:
    content = request.json["messages"][-1]["content"]
    return REPLIES[content.split(":")[0]]


@pytest.fixture
def emu() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(responder=reply_for).running() as emulator:
        yield emulator


def engine(emulator: ProviderEmulator) -> allm.Engine:
    return allm.Engine(
        adapter="openai", adapter_opts={"base_url": emulator.base_url("openai"), "api_key": KEY}, model="m"
    )


def events_of(emulator: ProviderEmulator, reply: str, i: int, **options: Any) -> Observable[Event]:
    return allm.stream_generate(engine(emulator), allm.request([allm.user(f"{reply}:{i}")]), **options)


@dataclass
class Seen:
    """One subscription's notifications and the threads they arrived on (appended from any thread)."""

    events: list[Event] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)
    late: list[Any] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)  # notified per notification
    dispose_on: Callable[[Event], bool] | None = None  # dispose inside on_next when it says so
    subscription: abc.DisposableBase | None = None
    disposed: bool = False

    def on_next(self, event: Event) -> None:
        self.threads.add(threading.current_thread().name)
        with self.changed:
            (self.late if self.ends or self.disposed else self.events).append(event)
            self.changed.notify_all()
        if self.dispose_on is not None and self.dispose_on(event):
            self.dispose()

    def on_error(self, error: Exception) -> None:
        self._end(f"error:{getattr(error, 'reason', type(error).__name__)}")

    def on_completed(self) -> None:
        self._end("completed")

    def _end(self, how: str) -> None:
        self.threads.add(threading.current_thread().name)
        with self.changed:
            (self.late if self.ends or self.disposed else self.ends).append(how)
            self.changed.notify_all()
        self.done.set()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Block until ``predicate()`` holds (re-checked at each notification); fail after ``timeout``."""
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), "condition not reached in time"

    def subscribe(self, source: Observable[Event]) -> Seen:
        self.subscription = source.subscribe(
            on_next=self.on_next, on_error=self.on_error, on_completed=self.on_completed
        )
        return self

    def dispose(self) -> None:
        self.disposed = True
        assert self.subscription is not None
        self.subscription.dispose()
        self.done.set()

    @property
    def text(self) -> str:
        return "".join(e.delta for e in self.events if isinstance(e, TextDelta))


def second_delta(event: Event) -> bool:
    return isinstance(event, TextDelta) and event.delta == " two"


@contextmanager
def holding(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Keep ``loop`` busy in one callback for the block: what the block queues on it runs after.

    Without it a subscribing thread may lose the CPU between ``subscribe`` and ``dispose``
    for as long as the loop needs to send the request (seen on a loaded machine).
    """
    running, release = threading.Event(), threading.Event()

    def hold() -> None:
        running.set()
        release.wait(WAIT)

    loop.call_soon_threadsafe(hold)
    assert running.wait(WAIT)
    try:
        yield
    finally:
        release.set()


# -- the scenarios each thread runs -----------------------------------------------------------------
@dataclass
class Outcome:
    """What one thread's scenario saw: notifications, delivery threads, POSTs it must have caused."""

    seen: Seen
    expect_end: str | None  # None: disposed, no terminal expected
    expect_threads: set[str]
    posts: int = 1
    expect_text: str | None = None
    disconnects: int = 0  # the disposal of a stalled stream must close its connection


def sync_generate(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
    seen = Seen()
    response = allm.generate_sync(
        engine(emulator), allm.request([allm.user(f"ok:{i}")]), on_event=seen.on_next
    )
    seen.ends.append("completed" if response.ok else f"error:{response.error}")
    return Outcome(seen, "completed", {LOOP_THREAD}, expect_text=TEXT)


def plain_subscribe(reply: str, end: str) -> Callable[[ProviderEmulator, int, UiLoop], Outcome]:
    def scenario(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
        seen = Seen().subscribe(events_of(emulator, reply, i))
        seen.done.wait(WAIT)
        return Outcome(seen, end, {LOOP_THREAD}, expect_text=TEXT if end == "completed" else None)

    return scenario


def dispose_at_once(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
    with holding(background_loop()):  # the loop cannot start the request before the disposal is queued
        seen = Seen().subscribe(events_of(emulator, "ok", i))
        seen.dispose()  # the start and the cancel run in order on the loop: no request is sent
    return Outcome(seen, None, set(), posts=0)


def dispose_from_another_thread(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
    seen = Seen().subscribe(events_of(emulator, "stall", i, stream_timeout=WAIT))
    seen.wait_for(lambda: seen.text == "one two" or bool(seen.ends), WAIT)  # all it sends before it stalls
    other = threading.Thread(target=seen.dispose)
    other.start()
    other.join(WAIT)
    return Outcome(seen, None, {LOOP_THREAD}, expect_text="one two", disconnects=1)


def dispose_inside_on_next(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
    seen = Seen(dispose_on=second_delta).subscribe(events_of(emulator, "ok", i))
    seen.done.wait(WAIT)
    return Outcome(seen, None, {LOOP_THREAD}, expect_text="one two")


def observe_on_a_ui_loop(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
    scheduler = AsyncIOThreadSafeScheduler(ui.loop)
    seen = Seen().subscribe(events_of(emulator, "ok", i).pipe(ops.observe_on(scheduler)))
    seen.done.wait(WAIT)
    return Outcome(seen, "completed", {ui.name}, expect_text=TEXT)


def subscribe_on_a_pool(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
    seen = Seen().subscribe(events_of(emulator, "ok", i).pipe(ops.subscribe_on(ui.pool)))
    seen.done.wait(WAIT)
    return Outcome(seen, "completed", {LOOP_THREAD}, expect_text=TEXT)


def own_loop(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
    seen = Seen()

    async def main() -> allm.Response:
        return await allm.generate(
            engine(emulator), allm.request([allm.user(f"ok:{i}")]), on_event=seen.on_next
        )

    response = asyncio.run(main())  # its own loop and library session, closed when it returns
    seen.ends.append("completed" if response.ok else f"error:{response.error}")
    return Outcome(seen, "completed", {threading.current_thread().name}, expect_text=TEXT)


def coalesced(emulator: ProviderEmulator, i: int, ui: UiLoop) -> Outcome:
    seen = Seen().subscribe(events_of(emulator, "ok", i).pipe(allm.coalesce_text(0.005)))
    seen.done.wait(WAIT)
    return Outcome(seen, "completed", {LOOP_THREAD}, expect_text=TEXT)


SCENARIOS = [
    sync_generate,
    plain_subscribe("ok", "completed"),
    plain_subscribe("fail", "error:provider_unavailable"),
    plain_subscribe("truncated", "error:truncated"),
    dispose_at_once,
    dispose_from_another_thread,
    dispose_inside_on_next,
    observe_on_a_ui_loop,
    subscribe_on_a_pool,
    own_loop,
    coalesced,
]


class UiLoop:
    """An asyncio loop in its own thread (what a GUI or web server would run) and a thread pool."""

    name = "ui-loop"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=self.name, daemon=True)
        self.pool = ThreadPoolScheduler(4)

    def __enter__(self) -> UiLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()
        self.pool.executor.shutdown(wait=True)


# -- 100 threads at once ------------------------------------------------------------------------------
def test_100_threads_subscribe_and_dispose_concurrently(emu: ProviderEmulator) -> None:
    n = 100
    outcomes: dict[int, Outcome] = {}
    failures: list[BaseException] = []
    barrier = threading.Barrier(n, timeout=WAIT)

    def run(i: int, ui: UiLoop) -> None:
        try:
            barrier.wait()
            outcomes[i] = SCENARIOS[i % len(SCENARIOS)](emu, i, ui)
        except BaseException as exc:  # reported below, with the thread's scenario
            failures.append(exc)

    with UiLoop() as ui:
        threads = [threading.Thread(target=run, args=(i, ui), name=f"worker-{i}") for i in range(n)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + JOIN_BUDGET
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert [t.name for t in threads if t.is_alive()] == []  # no deadlock
    assert failures == [] and len(outcomes) == n

    for i, outcome in sorted(outcomes.items()):
        seen, scenario = outcome.seen, SCENARIOS[i % len(SCENARIOS)]
        label = (i, getattr(scenario, "__name__", scenario))
        assert seen.late == [], label  # nothing after a terminal notification or a disposal
        if outcome.expect_end is None:
            assert seen.ends == [], label  # a disposed subscription gets no terminal notification
        else:
            assert seen.ends == [outcome.expect_end], label  # exactly one, the right one
        assert seen.threads <= outcome.expect_threads and (seen.threads or not outcome.posts), label
        if outcome.expect_text is not None:
            assert seen.text == outcome.expect_text, label
        if outcome.expect_end == "completed":
            assert isinstance(seen.events[-1], MessageCompleted), label
    # one POST per subscription that was not disposed at once, none twice; disposals reached the server
    posted = Counter(r.json["messages"][-1]["content"] for r in emu.requests)
    assert max(posted.values()) == 1, posted.most_common(3)
    assert emu.posts() == sum(o.posts for o in outcomes.values()), sorted(posted)
    emu.wait_until(lambda: len(emu.disconnects) >= sum(o.disconnects for o in outcomes.values()), WAIT)
    assert background_idle()


def background_idle() -> bool:
    """No task besides the probe and no connection in use on the library's background loop."""

    async def probe() -> tuple[int, int]:
        for _ in range(200):  # let cancelled tasks finish (bounded: 2 s)
            if len(asyncio.all_tasks()) == 1:
                break
            await asyncio.sleep(0.01)
        return len(asyncio.all_tasks()) - 1, connections(await session_for_loop())[0]

    return asyncio.run_coroutine_threadsafe(probe(), background_loop()).result(WAIT) == (0, 0)


# -- slow subscribers: Rx has no backpressure -----------------------------------------------------------
HOLD = 0.5  # seconds a slow subscriber holds the loop
SHORT = 0.2  # the timeouts of the streams around it: well under HOLD, well over their gaps


def hold_on_first_text(event: Event) -> None:
    if isinstance(event, TextDelta) and event.delta == "one":
        time.sleep(HOLD)  # a synchronous subscriber doing slow work inside on_next


def test_a_subscriber_holding_the_loop_holds_the_server_back(emu: ProviderEmulator) -> None:
    """Nothing is read while on_next runs: the socket buffers fill and the server's writes wait."""
    server_done_while_held: list[bool] = []

    def hold_once(event: Event) -> None:
        if isinstance(event, TextDelta) and not server_done_while_held:
            time.sleep(HOLD)  # the subject: a subscriber blocking inside on_next
            server_done_while_held.append(bool(emu.completed))

    response = allm.generate_sync(engine(emu), allm.request([allm.user("huge:0")]), on_event=hold_once)
    assert server_done_while_held == [False]
    assert response.ok and len(response.output_text) == 8_000_000
    emu.wait_until(lambda: emu.completed == [0], WAIT)  # it finished once the stream was read again


def test_a_subscriber_holding_the_loop_does_not_time_out_its_stream(emu: ProviderEmulator) -> None:
    """Bytes that arrived while on_next ran are activity, not a gap, for ``stream_timeout``."""
    request = allm.request([allm.user("paced:0")])
    response = allm.generate_sync(engine(emu), request, stream_timeout=SHORT, on_event=hold_on_first_text)
    assert response.ok and response.output_text == TEXT, response.error


@pytest.mark.asyncio
async def test_a_subscriber_holding_the_loop_does_not_time_out_other_streams(emu: ProviderEmulator) -> None:
    """Streams sharing the loop wait with it; their timeouts count only time the loop could read.

    The slow subscriber's headers come at 30 ms and it then holds the loop for 500 ms, while
    the second stream sends a chunk every 20 ms and the third stream's headers come at 60 ms.
    """
    eng = engine(emu)

    def call(reply: str, **options: Any) -> asyncio.Future[allm.Response]:
        return asyncio.ensure_future(allm.generate(eng, allm.request([allm.user(f"{reply}:0")]), **options))

    calls = [
        call("late", on_event=hold_on_first_text),
        call("paced", stream_timeout=SHORT),
        call("later", request_timeout=SHORT),
    ]
    responses = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
    assert [r.finish_reason for r in responses] == ["stop"] * 3, [r.error for r in responses]


def test_observe_on_queues_without_bound_while_the_transport_reads_on() -> None:
    """After ``observe_on`` the reader never waits for the consumer: events queue in the scheduler."""
    upstream_done = threading.Event()
    consumer = Seen()
    held: list[bool] = []

    def slow_consumer(event: Event) -> None:
        if not held:  # hold the consumer thread until the transport has read the whole stream
            held.append(upstream_done.wait(WAIT))
        consumer.on_next(event)

    scheduler = EventLoopScheduler()
    with ProviderEmulator(default=Reply(text=" ".join(["word"] * 500))).running() as emulator:
        events = events_of(emulator, "default", 0).pipe(
            ops.do_action(on_completed=upstream_done.set), ops.observe_on(scheduler)
        )
        events.subscribe(
            on_next=slow_consumer, on_error=consumer.on_error, on_completed=consumer.on_completed
        )
        assert consumer.done.wait(WAIT)
    scheduler.dispose()
    assert held == [True]  # the stream completed upstream while the consumer still held its first event
    assert (
        consumer.ends == ["completed"]
        and Counter(type(e).__name__ for e in consumer.events)["TextDelta"] == 500
    )
    assert consumer.threads and LOOP_THREAD not in consumer.threads


# -- a disposal that reaches the loop before the start ------------------------------------------------
def test_a_disposal_queued_before_the_start_sends_no_request(emu: ProviderEmulator) -> None:
    """Subscribe and dispose while the loop is busy: the start then finds the subscription disposed."""
    seen = Seen()
    with holding(background_loop()):
        seen.subscribe(events_of(emu, "ok", 0)).dispose()
    after = allm.generate_sync(engine(emu), allm.request([allm.user("ok:1")]))  # runs after both
    assert after.ok and after.output_text == TEXT
    assert [r.json["messages"][-1]["content"] for r in emu.requests] == ["ok:1"]
    assert seen.events == seen.ends == seen.late == []


def test_a_disposal_after_the_request_left_does_not_send_it_again(emu: ProviderEmulator) -> None:
    """Disposed once its POST arrived: exactly that one POST, and its connection closes."""
    seen = Seen().subscribe(events_of(emu, "stall", 0, stream_timeout=WAIT))
    seen.wait_for(lambda: seen.text == "one two", WAIT)
    seen.dispose()
    emu.wait_until(lambda: len(emu.disconnects) == 1, WAIT)
    after = allm.generate_sync(engine(emu), allm.request([allm.user("ok:1")]))
    assert after.ok
    assert [r.json["messages"][-1]["content"] for r in emu.requests] == ["stall:0", "ok:1"]
    assert seen.ends == seen.late == []
