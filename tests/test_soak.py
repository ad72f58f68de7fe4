"""Soak: thousands of streams with seeded random faults and disposals, 200 in flight.

Every stream goes over a real socket to the emulator, which serves from its own thread
and picks each stream's reply by the index the request carries in its user message. The
streams mix the four HTTP adapters (OpenAI Chat Completions and Responses, Anthropic,
Gemini), the library's session and one the test created, and these faults: success (whole
or re-chunked), slow headers, HTTP errors, stalls against a small ``stream_timeout``,
headers slower than a small ``request_timeout``, in-band errors, truncation, malformed
JSON and invalid UTF-8 frames, TCP resets. Independently, a stream may be disposed at
subscription, at a random delay, inside its n-th ``on_next``, or after it ended.

Afterwards: every subscription ended exactly once (completed, errored or disposed) and
nothing followed its end; each undisposed stream ended as its fault dictates; no key in
any error; exactly one POST for each subscription that got as far as sending, none for
one disposed at subscription; no connection in use in either connector; no task left
but the test's own; no exception reported to the loop, no error logged, no
``ResourceWarning``. The summary line (streams/s, outcomes) is printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from helpers import connections
from reactivex import abc

import rx_allm as allm
from rx_allm._connections import close_session, session_for_loop
from rx_allm.events import Event, MessageCompleted
from rx_allm.testing.emulator import ProviderEmulator, RecordedRequest, Reply, ToolCallSpec

SEED = 20250611
IN_FLIGHT = 200
BUDGET = 240.0  # seconds: the soak fails rather than run longer (10,000 streams: 30-60 s on two busy cores)
PER_STREAM = 20.0  # seconds any one stream may take before it counts as hung
SMALL_TIMEOUT = 0.05  # the stream_timeout of stalls and the request_timeout of slow headers
TIMEOUT = 20.0  # every other stream's timeouts
KEYS = {
    "openai": "sk-soak-openai-7f3a9c1e5b2d4f60",
    "anthropic": "sk-ant-soak-2c8e4a6f1b3d5e79",
    "gemini": "AIzaSoakGemini4b7d9f2a6c1e3b58",
}
ROUTES = {  # emulator route -> (adapter, adapter options, model)
    "openai": ("openai", {}, "gpt-4o-mini"),
    "responses": ("openai", {"endpoint": "responses"}, "gpt-4o-mini"),
    "anthropic": ("anthropic", {}, "claude-sonnet-4-5"),
    "gemini": ("gemini", {}, "gemini-2.5-flash"),
}
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "mu"]
INDEX = re.compile(r"soak-(\d+)")


# -- the plan: one seeded fault and disposal point per stream ------------------------------------
@dataclass(frozen=True)
class Plan:
    index: int
    route: str
    fault: str
    reply: Reply
    options: dict[str, Any]
    dispose: str  # never | at_subscribe | after_delay | at_event | after_end
    dispose_at: float  # seconds (after_delay) or the 1-based event number (at_event)
    own_session: bool

    @property
    def text(self) -> str:
        return "".join(self.reply.text)


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))


FAULTS = {  # name: weight
    "ok": 24,
    "ok_rechunked": 10,
    "ok_tools": 6,
    "ok_slow_headers": 6,
    "http_error": 12,
    "stall": 8,
    "headers_timeout": 4,
    "in_band_error": 8,
    "truncated": 8,
    "malformed": 5,
    "invalid_utf8": 3,
    "reset": 6,
}


def fault_reply(fault: str, rng: random.Random, text: str) -> tuple[Reply, dict[str, Any]]:
    """The reply and the call options of one fault.

    Mid-stream faults act after 1..3 frames: before every provider's terminal marker, as a
    text has at least 4 words.
    """
    after = rng.randint(1, 3)
    match fault:
        case "ok":
            return Reply(text=text), {}
        case "ok_rechunked":
            return Reply(text=text, rechunk_seed=rng.randrange(1 << 30), max_chunk=rng.randint(1, 64)), {}
        case "ok_tools":
            call = ToolCallSpec("lookup", {"q": text[:12]}, fragments=rng.randint(1, 4))
            return Reply(text=text, tool_calls=[call]), {}
        case "ok_slow_headers":
            return Reply(text=text, header_delay=rng.uniform(0.005, 0.03)), {}
        case "http_error":
            return Reply(status=rng.choice([400, 401, 404, 429, 500, 503, 529])), {}
        case "stall":
            return Reply(text=text, stall_after=after), {"stream_timeout": SMALL_TIMEOUT}
        case "headers_timeout":
            return Reply(text=text, header_delay=1.0), {"request_timeout": SMALL_TIMEOUT}
        case "in_band_error":
            return Reply(text=text, error_after=after), {}
        case "truncated":
            return Reply(text=text, truncate_after=after), {}
        case "malformed":
            return Reply(text=text, malformed_after=after), {}
        case "invalid_utf8":
            return Reply(text=text, invalid_utf8_after=after), {}
        case "reset":
            return Reply(text=text, reset_after=after), {}
    raise ValueError(fault)


#: (error class, reason) each fault ends with when nothing disposed the stream first.
EXPECTED: dict[str, tuple[type[Exception], str | None] | None] = {
    "ok": None,
    "ok_rechunked": None,
    "ok_tools": None,
    "ok_slow_headers": None,
    "http_error": (allm.AdapterError, None),  # the reason follows the status; the status is checked
    "stall": (allm.AdapterError, "timeout"),
    "headers_timeout": (allm.AdapterError, "timeout"),
    "in_band_error": (allm.AdapterError, "provider_unavailable"),  # a "server_error" event
    "truncated": (allm.StreamError, "truncated"),
    "malformed": (allm.StreamError, "malformed_event"),
    "invalid_utf8": (allm.StreamError, "malformed_event"),
    "reset": (allm.AdapterError, "network_error"),
}
DISPOSALS = {"never": 55, "at_subscribe": 8, "after_delay": 12, "at_event": 15, "after_end": 10}


def make_plan(n: int, seed: int) -> list[Plan]:
    rng = random.Random(seed)
    faults, fault_weights = list(FAULTS), list(FAULTS.values())
    disposals, disposal_weights = list(DISPOSALS), list(DISPOSALS.values())
    plans = []
    for index in range(n):
        fault = rng.choices(faults, fault_weights)[0]
        reply, options = fault_reply(fault, rng, _text(rng))
        dispose = rng.choices(disposals, disposal_weights)[0]
        dispose_at = rng.uniform(0.0, 0.3) if dispose == "after_delay" else rng.randint(1, 8)
        plan = Plan(
            index=index,
            route=rng.choice(list(ROUTES)),
            fault=fault,
            reply=reply,
            options={"stream_timeout": TIMEOUT, "request_timeout": TIMEOUT, **options},
            dispose=dispose,
            dispose_at=dispose_at,
            own_session=rng.random() < 0.25,
        )
        plans.append(plan)
    return plans


# -- one subscription, watched ---------------------------------------------------------------------
@dataclass
class Watch:
    """Every notification one subscription received, and how it ended."""

    plan: Plan
    future: asyncio.Future[None]
    subscription: abc.DisposableBase | None = None
    events: list[Event] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)  # "completed" | "error" | "disposed"
    late: list[str] = field(default_factory=list)  # anything received after the end
    error: Exception | None = None

    def on_next(self, event: Event) -> None:
        if self.ends:
            self.late.append(event.type)
            return
        self.events.append(event)
        if self.plan.dispose == "at_event" and len(self.events) == self.plan.dispose_at:
            self.dispose()

    def on_error(self, error: Exception) -> None:
        self._end("error")
        self.error = error

    def on_completed(self) -> None:
        self._end("completed")

    def dispose(self) -> None:
        """Dispose the subscription; it counts as the end only when nothing ended it before."""
        if not self.ends:
            self.ends.append("disposed")
            self._wake()
        assert self.subscription is not None
        self.subscription.dispose()

    def _end(self, how: str) -> None:
        (self.late if self.ends else self.ends).append(how)
        self._wake()

    def _wake(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    @property
    def outcome(self) -> str:
        end = self.ends[0]
        if end == "error":
            return f"{type(self.error).__name__}:{getattr(self.error, 'reason', '?')}"
        return end

    @property
    def reached_server(self) -> bool:
        """Certainly sent: the server's answer showed (events, completion, an HTTP error status).

        A timeout waiting for headers or a disposal before any event may come before sending.
        """
        return (
            bool(self.events)
            or self.ends[0] == "completed"
            or getattr(self.error, "status", None) is not None
        )


class Soak:
    """Runs the plans ``IN_FLIGHT`` at a time on the running loop."""

    def __init__(self, emu: ProviderEmulator, own: aiohttp.ClientSession) -> None:
        self.engines = {
            (route, mine): allm.Engine(
                adapter=adapter,
                adapter_opts={
                    "base_url": emu.base_url(route),
                    "api_key": KEYS[adapter],
                    **opts,
                    **({"session": own} if mine else {}),
                },
                model=model,
            )
            for route, (adapter, opts, model) in ROUTES.items()
            for mine in (False, True)
        }
        self.watches: list[Watch] = []
        self.hung: list[int] = []

    async def run(self, plans: list[Plan]) -> None:
        pending = iter(plans)
        await asyncio.gather(*(self._worker(pending) for _ in range(IN_FLIGHT)))

    async def _worker(self, pending: Iterator[Plan]) -> None:
        for plan in pending:
            await self._one(plan)

    async def _one(self, plan: Plan) -> None:
        loop = asyncio.get_running_loop()
        watch = Watch(plan, loop.create_future())
        self.watches.append(watch)
        request = allm.request([allm.user(f"soak-{plan.index}: {plan.fault}")])
        events = allm.stream_generate(self.engines[plan.route, plan.own_session], request, **plan.options)
        watch.subscription = events.subscribe(
            on_next=watch.on_next, on_error=watch.on_error, on_completed=watch.on_completed
        )
        timer = None
        if plan.dispose == "at_subscribe":
            watch.dispose()
        elif plan.dispose == "after_delay":
            timer = loop.call_later(plan.dispose_at, watch.dispose)
        try:
            await asyncio.wait_for(asyncio.shield(watch.future), PER_STREAM)
        except TimeoutError:
            self.hung.append(plan.index)
        finally:
            if timer is not None:
                timer.cancel()
            if plan.dispose == "after_end" or not watch.ends:  # a no-op after the end; cleanup if hung
                watch.subscription.dispose()


def index_of(request: RecordedRequest) -> int:
    """The stream index a request carries in its user message."""
    match = INDEX.search(json.dumps(request.json))
    assert match is not None, request.json
    return int(match.group(1))


async def settled(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` every 10 ms until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def server_done(emu: ProviderEmulator, plans: list[Plan]) -> bool:
    """Every recorded request ended on the server: written to its end, client gone, or reset."""
    ended = set(emu.completed) | {d.request_index for d in emu.disconnects}
    return all(r.index in ended or plans[index_of(r)].fault == "reset" for r in emu.requests)


# -- the soak -----------------------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("n", [pytest.param(400, id="400"), pytest.param(10_000, id="10000")])
async def test_soak(n: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rx_allm")
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    plans = make_plan(n, SEED + n)
    emu = ProviderEmulator(responder=lambda request: plans[index_of(request)].reply)
    emu.start_in_thread()
    try:
        own = aiohttp.ClientSession()
        soak = Soak(emu, own)
        started = time.perf_counter()
        await asyncio.wait_for(soak.run(plans), BUDGET)
        wall = time.perf_counter() - started

        me = asyncio.current_task()
        assert await settled(lambda: asyncio.all_tasks() == {me}), asyncio.all_tasks() - {me}
        pools = {"library": connections(await session_for_loop()), "own": connections(own)}
        assert pools["library"][0] == pools["own"][0] == 0, pools  # nothing in use, nothing half-read
        assert max(pools["library"][1], pools["own"][1]) <= IN_FLIGHT  # idle ones are reused, not piled up
        await close_session()
        await own.close()
        assert await settled(lambda: server_done(emu, plans))  # no handler waits on a forgotten socket
    finally:
        emu.stop_thread()  # from here on no request can be recorded
        loop.set_exception_handler(None)

    watches = soak.watches
    assert soak.hung == [] and len(watches) == n
    # every subscription ended exactly once, and nothing came after its end
    assert [w.plan.index for w in watches if len(w.ends) != 1 or w.late] == []
    # one POST for each subscription that got as far as sending, none twice, none when disposed at once
    posts = Counter(index_of(r) for r in emu.requests)
    assert max(posts.values()) == 1
    assert [w.plan.index for w in watches if w.reached_server and posts[w.plan.index] != 1] == []
    assert [w.plan.index for w in watches if w.plan.dispose == "at_subscribe" and posts[w.plan.index]] == []
    # streams nothing disposed ended as their fault dictates
    for w in watches:
        if w.ends[0] != "disposed":
            check_outcome(w)
    assert reported == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []

    disposed = [w for w in watches if w.ends[0] == "disposed"]
    disposed_after_end = [w for w in watches if w.plan.dispose == "after_end" and w.ends[0] != "disposed"]
    print(
        f"\nsoak n={n} seed={SEED + n}: {wall:.1f} s, {n / wall:.0f} streams/s, {len(emu.requests)} POSTs"
        f"\n  outcomes {dict(Counter(w.outcome for w in watches))}"
        f"\n  disposed before any event {sum(1 for w in disposed if not w.events)} "
        f"({sum(1 for w in disposed if not w.events and posts[w.plan.index])} of them had sent their POST), "
        f"mid-stream {sum(1 for w in disposed if w.events)}, "
        f"after the end {len(disposed_after_end)}"
        f"\n  idle pooled connections afterwards: library {pools['library'][1]}, own {pools['own'][1]}"
    )


def check_outcome(w: Watch) -> None:
    """The end a stream's fault dictates; no key in an error; no ``message_completed`` before one."""
    plan, error = w.plan, w.error
    if error is not None:
        assert not any(k in str(error) or k in repr(error) for k in KEYS.values()), error
        assert not any(isinstance(e, MessageCompleted) for e in w.events)
    expected = EXPECTED[plan.fault]
    if expected is None:
        assert w.ends == ["completed"], (plan, error)
        last = w.events[-1]
        assert isinstance(last, MessageCompleted) and last.message.content == plan.text, plan
        assert last.finish_reason == ("tool_calls" if plan.reply.tool_calls else "stop")
        return
    kind, reason = expected
    assert type(error) is kind, (plan, error)
    assert reason is None or getattr(error, "reason", None) == reason, (plan, error)
    if plan.fault == "http_error":
        assert getattr(error, "status", None) == plan.reply.status and w.events == [], (plan, error)
