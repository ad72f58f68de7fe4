"""A conformance suite any :class:`~rx_allm.adapter.StreamAdapter` can run.

The suite drives an adapter through a :class:`ConformanceHarness`: the harness makes the
adapter produce named scenarios (:data:`SCENARIOS` and its own :class:`ErrorCase` list)
and reports what its backend saw (requests received, cancellations with their times).
Two harnesses ship: :class:`FakeHarness` (the scripted Fake adapter, or an adapter that
wraps it) and :class:`EmulatorHarness` (an HTTP adapter against the
:class:`~rx_allm.testing.emulator.ProviderEmulator`, in the ``"openai"``, ``"responses"``,
``"anthropic"`` or ``"gemini"`` wire format).

Run it with pytest by subclassing :class:`AdapterConformance`::

    class TestMyAdapter(AdapterConformance):
        harness_factory = staticmethod(lambda: EmulatorHarness("openai", adapter=MyAdapter))

or await the ``check_*`` coroutines through :func:`run_check` from any async test. A
failed check raises :class:`ConformanceFailure` (an ``AssertionError``).

What is checked (the adapter contract):

* cold and lazy: building the Observable sends nothing; each subscription sends exactly
  one request, two subscriptions two;
* ordering: ``message_started`` first; text and tool events; usage ``raw_chunk`` before the
  end; exactly one trailing ``message_completed`` then ``on_completed`` — or one terminal
  ``on_error``, never preceded by a ``message_completed``, and nothing after it;
* the shared vocabulary, in every scenario: each ``text_delta`` has a block id and each
  block ends with one ``text_completed`` carrying its whole text; ``message_started`` and
  ``message_completed`` carry ``META_PROVIDER`` and, with a finish reason, the provider's
  ``META_NATIVE_FINISH_REASON``; a successful stream never finishes with ``"error"`` (the
  value of a failed Response); reasoning streams as ``raw_chunk(kind="reasoning_delta")``
  with a block id and ends, in order, in ``Message.reasoning`` (the ``"reasoning"``
  scenario: before the text, and ``output_tokens`` counting the reasoning tokens); refusal
  deltas add up to ``Message.refusal`` with ``finish_reason="content_filter"``;
* tool calls assembled (started before its deltas before its completed, arguments parsed)
  and usage delivered as a :class:`~rx_allm.models.Usage`;
* disposal, and a downstream ``take``, cancel the request within :data:`DISPOSAL_BOUND`
  seconds, measured from the dispose to the moment the harness observed the cancellation;
* ``stream_timeout`` honoured: a stall ends in ``AdapterError("timeout")``;
* every error case surfaces with its type, reason and attributes — pre-flight cases raised
  by ``stream_generate`` before any I/O, the others as the terminal ``on_error`` after
  exactly one request — and never shows the API key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from reactivex import Observable
from reactivex import operators as ops

from rx_allm.engine import Engine
from rx_allm.errors import AdapterError, RxAllmError, StreamError
from rx_allm.events import (
    META_NATIVE_FINISH_REASON,
    META_PROVIDER,
    REASONING_COMPLETED,
    REASONING_DELTA,
    REFUSAL_DELTA,
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.models import Request, Usage, request, user
from rx_allm.providers.anthropic import Anthropic
from rx_allm.providers.gemini import Gemini
from rx_allm.providers.openai import OpenAI
from rx_allm.runner import stream_generate
from rx_allm.testing.emulator import ProviderEmulator
from rx_allm.testing.marbles import CleanupCounter
from rx_allm.testing.recording import Recording
from rx_allm.testing.wire import Reply, ToolCallSpec

__all__ = [
    "DISPOSAL_BOUND",
    "REASONING",
    "REASONING_USAGE",
    "REQUEST",
    "SCENARIOS",
    "STALL_TIMEOUT",
    "TEXT",
    "TOOL_ARGUMENTS",
    "TOOL_NAME",
    "USAGE",
    "AdapterConformance",
    "ConformanceFailure",
    "ConformanceHarness",
    "EmulatorHarness",
    "ErrorCase",
    "FakeHarness",
    "check_cold_and_lazy",
    "check_dispose_cancels",
    "check_error",
    "check_one_request_per_subscription",
    "check_reasoning",
    "check_stream_timeout",
    "check_take_cancels",
    "check_text",
    "check_tool_call",
    "check_usage",
    "run_check",
]

#: The text of the ``"text"`` and ``"usage"`` scenarios (streamed in at least two deltas).
TEXT = "Hello from the conformance suite."
#: The one tool call of the ``"tool_call"`` scenario.
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS: Mapping[str, Any] = {"city": "Paris", "unit": "celsius"}
#: The usage of the ``"usage"`` scenario (its input and output token counts are checked).
USAGE = Usage(input_tokens=12, output_tokens=8)
#: The reasoning of the ``"reasoning"`` scenario (streamed before TEXT).
REASONING = "The user greets me; a short greeting will do."
#: The usage of the ``"reasoning"`` scenario: ``output_tokens`` includes the reasoning tokens.
REASONING_USAGE = Usage(input_tokens=12, output_tokens=30, reasoning_tokens=22)
#: The ``stream_timeout`` (seconds) given to the ``"stall"`` scenario.
STALL_TIMEOUT = 0.2
#: Seconds allowed from a dispose to the backend observing the cancellation.
DISPOSAL_BOUND = 0.5
#: The request every check sends.
REQUEST: Request = request([user("Say hello to the conformance suite.")])

#: The scenarios every harness's ``engine(scenario)`` must support, besides its error cases.
SCENARIOS: Mapping[str, str] = {
    "text": f"stream TEXT in two or more text deltas, finish 'stop' ({TEXT!r})",
    "tool_call": f"one tool call {TOOL_NAME}({dict(TOOL_ARGUMENTS)}), finish 'tool_calls'",
    "usage": "stream TEXT, report USAGE, finish 'stop'",
    "reasoning": "stream REASONING as reasoning, then TEXT; report REASONING_USAGE (output includes "
    "reasoning), finish 'stop'",
    "hang": "stream some text, then stay open without sending anything (until cancelled)",
    "stall": "stream some text, then stall: under stream_timeout=STALL_TIMEOUT it must end in "
    "AdapterError('timeout')",
}

_WAIT = 5.0  # bound on waiting for a stream to end or to reach a point (seconds)
_SETTLE = 0.05  # real wait letting stray I/O (a repeated request) reach the backend
_EAGER_SETTLE = 0.1  # the same before the first subscription, where an eager request would show
_OBSERVE = 2.0  # bound on waiting for the backend to observe a cancellation
_EVENT_TYPES = (
    MessageStarted,
    TextDelta,
    TextCompleted,
    ToolCallStarted,
    ToolCallDelta,
    ToolCallCompleted,
    RawChunk,
    MessageCompleted,
)


class ConformanceFailure(AssertionError):
    """An adapter broke the contract (raised by the ``check_*`` functions)."""


@dataclass(frozen=True)
class ErrorCase:
    """A scenario that must fail with ``error`` and ``reason``.

    ``preflight``: raised by ``stream_generate`` before any I/O (else the terminal
    ``on_error`` after one request). ``partial``: some text streams before the error.
    ``attributes``: further expected attribute values of the error (``status``,
    ``retry_after_ms``, ...).
    """

    name: str
    error: type[RxAllmError]
    reason: str
    preflight: bool = False
    partial: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reason not in self.error.reasons:
            raise ValueError(f"{self.error.__name__} has no reason {self.reason!r}")


class ConformanceHarness(Protocol):
    """What the suite needs to drive one adapter.

    Construction must be cheap (no I/O): the pytest suite builds a harness to list its
    error cases at collection time, then a fresh one per test around
    ``setup()``/``teardown()``. The suite uses one scenario at a time.
    """

    #: A label for failure messages.
    name: str
    #: The API key the engines carry (checked never to appear in an error), or None.
    api_key: str | None

    async def setup(self) -> None:
        """Start the backend (on the running loop)."""
        ...

    async def teardown(self) -> None:
        """Stop the backend."""
        ...

    def engine(self, scenario: str) -> Engine:
        """An engine whose adapter produces ``scenario`` (a :data:`SCENARIOS` key or an error case name)."""
        ...

    def error_cases(self) -> Sequence[ErrorCase]:
        """The error scenarios this adapter supports, with the error each must give."""
        ...

    def requests(self) -> int:
        """How many requests the backend received (read by the suite once streams ended)."""
        ...

    def cancellations(self) -> Sequence[float]:
        """The ``time.monotonic()`` of each cancellation the backend observed, in order."""
        ...


# -- recording ----------------------------------------------------------------------------
def _subscribe(events: Observable[Any], label: str) -> tuple[Recording, Any]:
    rec = Recording(label)
    subscription = events.subscribe(on_next=rec.on_next, on_error=rec.on_error, on_completed=rec.on_completed)
    return rec, subscription


async def _wait(rec: Recording, done: Callable[[], bool], what: str, timeout: float = _WAIT) -> None:
    try:
        await rec.wait(done, what, timeout)
    except TimeoutError as exc:
        raise ConformanceFailure(str(exc)) from None


async def _record(events: Observable[Any], label: str, timeout: float = _WAIT) -> Recording:
    rec, subscription = _subscribe(events, label)
    try:
        await _wait(rec, lambda: rec.ended, "terminal notification", timeout)
    finally:
        subscription.dispose()
    return rec


def _events(harness: ConformanceHarness, scenario: str, **options: Any) -> Observable[Event]:
    try:
        return stream_generate(harness.engine(scenario), REQUEST, include_raw_chunks=True, **options)
    except Exception as exc:
        raise ConformanceFailure(f"{harness.name}: {scenario}: stream_generate raised {exc!r}") from exc


def _expect(condition: bool, label: str, message: str) -> None:
    if not condition:
        raise ConformanceFailure(f"{label}: {message}")


# -- the contract every recording must satisfy ---------------------------------------------
def _contract_problems(rec: Recording) -> list[str]:
    """Every way the recorded stream breaks the ordering contract (empty when it holds)."""
    problems: list[str] = []
    events = rec.events
    if not rec.ended:
        problems.append("the stream has not ended")
    if rec.late:
        problems.append(f"notifications after the terminal one: {rec.late!r}")
    foreign = [e for e in events if not isinstance(e, _EVENT_TYPES)]
    if foreign:
        problems.append(f"values that are not rx_allm events: {foreign[:3]!r}")
    if events and not isinstance(events[0], MessageStarted):
        problems.append("the first event is not message_started")
    if len(rec.of(MessageStarted)) > 1:
        problems.append("more than one message_started")
    completed_at = [i for i, e in enumerate(events) if isinstance(e, MessageCompleted)]
    if rec.error is not None and completed_at:
        problems.append("a message_completed before the terminal on_error")
    if rec.completed and completed_at != [len(events) - 1]:
        problems.append("on_completed not preceded by exactly one message_completed as the last event")
    if any(not e.delta for e in rec.of(TextDelta)):
        problems.append("an empty text_delta")
    if any(not e.arguments_delta for e in rec.of(ToolCallDelta)):
        problems.append("an empty tool_call_delta")
    if any(e.kind == "usage" and not isinstance(e.data, Usage) for e in rec.of(RawChunk)):
        problems.append("a usage raw_chunk whose data is not a Usage")
    return problems + _tool_order_problems(events) + _vocabulary_problems(rec)


def _vocabulary_problems(rec: Recording) -> list[str]:
    """How the recorded stream breaks the shared vocabulary (text blocks, metadata, reasoning, refusal)."""
    problems = _text_block_problems(rec.events)
    started, completed = rec.of(MessageStarted), rec.of(MessageCompleted)
    if started and not _named(started[0].metadata.get(META_PROVIDER)):
        problems.append(f"message_started.metadata has no {META_PROVIDER!r}")
    for done in completed:
        if not _named(done.metadata.get(META_PROVIDER)):
            problems.append(f"message_completed.metadata has no {META_PROVIDER!r}")
        if done.finish_reason is not None and not _named(done.metadata.get(META_NATIVE_FINISH_REASON)):
            problems.append(f"message_completed.metadata has no {META_NATIVE_FINISH_REASON!r}")
        if done.finish_reason == "error":
            problems.append("a successful stream finished with 'error' (the value of a failed Response)")
        problems += _reasoning_problems(rec, done) + _refusal_problems(rec, done)
    return problems


def _named(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _text_block_problems(events: Sequence[Any]) -> list[str]:
    texts: dict[str, list[str]] = {}
    closed: set[str] = set()
    problems: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            if event.id is None or not event.id:
                return ["a text_delta without a block id"]
            if event.id in closed:
                problems.append(f"a text_delta of block {event.id!r} after its text_completed")
            texts.setdefault(event.id, []).append(event.delta)
        elif isinstance(event, TextCompleted):
            block = event.id or ""
            if block not in texts or block in closed:
                problems.append(f"a text_completed for block {event.id!r} without deltas, or twice")
            elif "".join(texts[block]) != event.text:
                problems.append(
                    f"text_completed {block!r} says {event.text!r}, its deltas {''.join(texts[block])!r}"
                )
            closed.add(block)
    unfinished = [block for block in texts if block not in closed]
    if unfinished and any(isinstance(e, MessageCompleted) for e in events):
        problems.append(f"text blocks never completed: {unfinished}")
    return problems


def _reasoning_problems(rec: Recording, done: MessageCompleted) -> list[str]:
    deltas = [e.data for e in rec.of(RawChunk) if e.kind == REASONING_DELTA]
    if any(not isinstance(d, dict) or not _named(d.get("id")) or not _named(d.get("delta")) for d in deltas):
        return ["a reasoning_delta whose data is not {'id': str, 'delta': non-empty str}"]
    ended = [e.data.get("reasoning") for e in rec.of(RawChunk) if e.kind == REASONING_COMPLETED]
    kept = [r.model_dump(mode="json", exclude_none=True) for r in done.message.reasoning]
    if ended != kept:
        return [f"reasoning_completed events {ended!r} differ from message.reasoning {kept!r}"]
    streamed = "".join(d["delta"] for d in deltas)
    if streamed != "".join(r.text for r in done.message.reasoning):
        return [f"reasoning deltas join to {streamed!r}, not to the text of message.reasoning"]
    return []


def _refusal_problems(rec: Recording, done: MessageCompleted) -> list[str]:
    deltas = "".join(str(e.data.get("delta", "")) for e in rec.of(RawChunk) if e.kind == REFUSAL_DELTA)
    refusal = done.message.refusal
    if deltas and refusal != deltas:
        return [f"refusal deltas join to {deltas!r}, message.refusal is {refusal!r}"]
    if refusal is not None and done.finish_reason != "content_filter":
        return [f"a refusal finished with {done.finish_reason!r}, not 'content_filter'"]
    return []


def _tool_order_problems(events: Sequence[Any]) -> list[str]:
    seen: dict[str, dict[type[Any], list[int]]] = {}
    for index, event in enumerate(events):
        if isinstance(event, (ToolCallStarted, ToolCallDelta, ToolCallCompleted)):
            seen.setdefault(event.id, {}).setdefault(type(event), []).append(index)
    problems: list[str] = []
    for call_id, at in seen.items():
        started, deltas, completed = (
            at.get(kind, []) for kind in (ToolCallStarted, ToolCallDelta, ToolCallCompleted)
        )
        if len(started) > 1 or len(completed) > 1:
            problems.append(f"tool call {call_id!r} started or completed twice")
        if started and deltas and deltas[0] < started[0]:
            problems.append(f"a delta of tool call {call_id!r} before its tool_call_started")
        if completed and deltas and deltas[-1] > completed[0]:
            problems.append(f"a delta of tool call {call_id!r} after its tool_call_completed")
        if started and completed and completed[0] < started[0]:
            problems.append(f"tool call {call_id!r} completed before it started")
    return problems


def _expect_contract(rec: Recording) -> None:
    problems = _contract_problems(rec)
    _expect(not problems, rec.label, f"{'; '.join(problems)}; saw {rec.summary()}")


def _expect_success(rec: Recording) -> MessageCompleted:
    _expect(rec.error is None, rec.label, f"ended with on_error({rec.error!r})")
    _expect_contract(rec)
    final = rec.events[-1]
    assert isinstance(final, MessageCompleted)
    return final


def _expect_requests(harness: ConformanceHarness, label: str, expected: int) -> None:
    sent = harness.requests()
    _expect(sent == expected, label, f"{sent} request(s) sent, expected {expected}")


# -- checks ---------------------------------------------------------------------------------
Check = Callable[..., Awaitable[None]]


async def run_check(harness: ConformanceHarness, check: Check, *args: Any) -> None:
    """Set the harness up, run one check, tear the harness down."""
    await harness.setup()
    try:
        await check(harness, *args)
    finally:
        await harness.teardown()


async def check_cold_and_lazy(harness: ConformanceHarness) -> None:
    """Building the Observable sends nothing; subscribing sends exactly one request."""
    label = f"{harness.name}: cold and lazy"
    events = _events(harness, "text")
    await asyncio.sleep(_EAGER_SETTLE)
    _expect(harness.requests() == 0, label, f"{harness.requests()} request(s) sent before any subscription")
    _expect_success(await _record(events, label))
    await asyncio.sleep(_SETTLE)
    _expect_requests(harness, label, 1)


async def check_one_request_per_subscription(harness: ConformanceHarness) -> None:
    """Two concurrent subscriptions are two independent, complete generations (two requests)."""
    label = f"{harness.name}: two subscriptions"
    events = _events(harness, "text")
    for rec in await asyncio.gather(_record(events, label), _record(events, label)):
        _expect_success(rec)
        _expect(rec.text() == TEXT, label, f"a subscriber received {rec.text()!r}, expected {TEXT!r}")
    await asyncio.sleep(_SETTLE)
    _expect_requests(harness, label, 2)


async def check_text(harness: ConformanceHarness) -> None:
    """A text reply: ordered events, the text in two or more deltas, one message_completed."""
    rec = await _record(_events(harness, "text"), f"{harness.name}: text")
    final = _expect_success(rec)
    deltas = len(rec.of(TextDelta))
    _expect(deltas >= 2, rec.label, f"{deltas} text delta(s), expected a streamed reply")
    _expect(rec.text() == TEXT, rec.label, f"deltas join to {rec.text()!r}, expected {TEXT!r}")
    blocks = "".join(e.text for e in rec.of(TextCompleted))
    _expect(blocks in ("", TEXT), rec.label, f"text_completed gives {blocks!r}, expected {TEXT!r}")
    _expect(final.message.text == TEXT, rec.label, f"the final message says {final.message.text!r}")
    _expect(
        final.finish_reason == "stop", rec.label, f"finish_reason {final.finish_reason!r}, expected 'stop'"
    )
    _expect(not rec.of(ToolCallStarted), rec.label, "a tool call in a text reply")


async def check_tool_call(harness: ConformanceHarness) -> None:
    """A tool call: started, deltas (if any) and completed in order, arguments parsed."""
    rec = await _record(_events(harness, "tool_call"), f"{harness.name}: tool_call")
    final = _expect_success(rec)
    started, completed = rec.of(ToolCallStarted), rec.of(ToolCallCompleted)
    _expect(len(started) == len(completed) == 1, rec.label, f"expected one tool call, saw {rec.summary()}")
    call = completed[0]
    _expect(started[0].id == call.id != "", rec.label, "the started and completed ids differ or are empty")
    _expect(call.name == TOOL_NAME, rec.label, f"name {call.name!r}, expected {TOOL_NAME!r}")
    _expect(call.arguments == TOOL_ARGUMENTS, rec.label, f"arguments {call.arguments!r}")
    try:
        raw = json.loads(call.raw_arguments)
    except ValueError:
        raw = None
    _expect(raw == TOOL_ARGUMENTS, rec.label, f"raw_arguments {call.raw_arguments!r}")
    deltas = "".join(e.arguments_delta for e in rec.of(ToolCallDelta) if e.id == call.id)
    _expect(deltas in ("", call.raw_arguments), rec.label, f"deltas join to {deltas!r}, not raw_arguments")
    calls = [(c.id, c.name, c.arguments) for c in final.message.tool_calls]
    _expect(calls == [(call.id, call.name, call.arguments)], rec.label, f"the final message has {calls!r}")
    _expect(final.finish_reason == "tool_calls", rec.label, f"finish_reason {final.finish_reason!r}")


async def check_usage(harness: ConformanceHarness) -> None:
    """Usage arrives as ``raw_chunk(kind="usage")`` carrying a Usage, before message_completed."""
    rec = await _record(_events(harness, "usage"), f"{harness.name}: usage")
    _expect_success(rec)
    usages = [e.data for e in rec.of(RawChunk) if e.kind == "usage"]
    _expect(bool(usages), rec.label, f"no raw_chunk(kind='usage'); saw {rec.summary()}")
    last = usages[-1]  # once per stream, or complete running totals: the last one is the total
    got = (last.input_tokens, last.output_tokens)
    want = (USAGE.input_tokens, USAGE.output_tokens)
    _expect(got == want, rec.label, f"(input_tokens, output_tokens) = {got}, expected {want}")


async def check_reasoning(harness: ConformanceHarness) -> None:
    """Reasoning streams before the text, ends in ``Message.reasoning``; output tokens include it."""
    rec = await _record(_events(harness, "reasoning"), f"{harness.name}: reasoning")
    final = _expect_success(rec)
    deltas = [i for i, e in enumerate(rec.events) if isinstance(e, RawChunk) and e.kind == REASONING_DELTA]
    _expect(bool(deltas), rec.label, f"no reasoning_delta raw chunk; saw {rec.summary()}")
    texts = [i for i, e in enumerate(rec.events) if isinstance(e, TextDelta)]
    _expect(bool(texts) and deltas[-1] < texts[0], rec.label, "reasoning did not stream before the text")
    reasoning = "".join(r.text for r in final.message.reasoning)
    _expect(
        reasoning == REASONING, rec.label, f"message.reasoning says {reasoning!r}, expected {REASONING!r}"
    )
    _expect(rec.text() == TEXT, rec.label, f"deltas join to {rec.text()!r}, expected {TEXT!r}")
    usages = [e.data for e in rec.of(RawChunk) if e.kind == "usage"]
    got = usages[-1].output_tokens if usages else None
    want = REASONING_USAGE.output_tokens
    _expect(got == want, rec.label, f"output_tokens {got}, expected {want} (reasoning included)")


async def _expect_cancelled(harness: ConformanceHarness, events: Observable[Any], what: str) -> None:
    """Subscribe to the ``"hang"`` scenario; once text arrived, end the subscription and time the cancel.

    ``what`` is ``"dispose"`` (the check disposes) or ``"take(2)"`` (the downstream ``take``
    ended the subscription itself; the time runs from its completion).
    """
    before = len(harness.cancellations())
    rec, subscription = _subscribe(events, f"{harness.name}: {what}")
    try:
        await _wait(rec, lambda: bool(rec.of(TextDelta)) or rec.ended, "text delta")
        if what != "dispose":
            await _wait(rec, lambda: rec.ended, "end of the downstream subscription")
        _expect(rec.error is None, rec.label, f"the stream failed first: {rec.error!r}")
        seen = len(rec.events) + len(rec.late)
        start = time.monotonic() if what == "dispose" else rec.ended_at
        subscription.dispose()
        deadline = start + _OBSERVE
        while len(harness.cancellations()) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
    finally:
        subscription.dispose()
    cancellations = harness.cancellations()
    _expect(len(cancellations) > before, rec.label, "the backend saw no cancellation")
    latency = (cancellations[before] - start) * 1000
    bound = DISPOSAL_BOUND * 1000
    _expect(latency <= bound, rec.label, f"cancellation observed after {latency:.0f} ms (bound {bound:g} ms)")
    if what == "dispose":
        delivered = len(rec.events) + len(rec.late) != seen or rec.ended
        _expect(not delivered, rec.label, f"notifications after the dispose: {rec.summary()}")
    _expect_requests(harness, rec.label, 1)


async def check_dispose_cancels(harness: ConformanceHarness) -> None:
    """Disposing mid-stream cancels the request within DISPOSAL_BOUND; nothing is delivered after."""
    await _expect_cancelled(harness, _events(harness, "hang"), "dispose")


async def check_take_cancels(harness: ConformanceHarness) -> None:
    """A downstream ``take(2)`` (message_started, first text) cancels the request within DISPOSAL_BOUND."""
    await _expect_cancelled(harness, _events(harness, "hang").pipe(ops.take(2)), "take(2)")


async def check_stream_timeout(harness: ConformanceHarness) -> None:
    """A stall under ``stream_timeout=STALL_TIMEOUT`` ends in ``AdapterError("timeout")`` after the text."""
    events = _events(harness, "stall", stream_timeout=STALL_TIMEOUT)
    rec = await _record(events, f"{harness.name}: stall", timeout=STALL_TIMEOUT + _OBSERVE)
    _expect_contract(rec)
    timed_out = isinstance(rec.error, AdapterError) and rec.error.reason == "timeout"
    _expect(timed_out, rec.label, f"expected AdapterError('timeout'), saw {rec.summary()}")
    _expect(bool(rec.of(TextDelta)), rec.label, "no text before the stall")
    _expect_requests(harness, rec.label, 1)


async def check_error(harness: ConformanceHarness, case: ErrorCase) -> None:
    """``case`` fails with its type, reason and attributes, at the right moment, after at most one request."""
    label = f"{harness.name}: {case.name}"
    expected = f"expected {case.error.__name__}({case.reason!r})"
    if case.preflight:
        try:
            stream_generate(harness.engine(case.name), REQUEST)
        except Exception as exc:
            _expect_error(harness, case, label, exc)
        else:
            raise ConformanceFailure(f"{label}: {expected} raised by stream_generate, nothing raised")
        await asyncio.sleep(_SETTLE)
        _expect_requests(harness, label, 0)
        return
    rec = await _record(_events(harness, case.name), label)
    _expect(rec.error is not None, label, f"{expected} as on_error, saw {rec.summary()}")
    _expect_contract(rec)
    assert rec.error is not None
    _expect_error(harness, case, label, rec.error)
    if case.partial:
        _expect(bool(rec.of(TextDelta)), label, "the text before the error was not delivered")
    await asyncio.sleep(_SETTLE)
    _expect_requests(harness, label, 1)


def _expect_error(harness: ConformanceHarness, case: ErrorCase, label: str, error: BaseException) -> None:
    matches = isinstance(error, case.error) and error.reason == case.reason
    _expect(matches, label, f"expected {case.error.__name__}({case.reason!r}), got {error!r}")
    for name, value in case.attributes.items():
        got = getattr(error, name, None)
        _expect(got == value, label, f"error.{name} is {got!r}, expected {value!r}")
    key = harness.api_key
    if key and isinstance(error, RxAllmError):
        shown = (str(error), repr(error), json.dumps(error.to_dict(), default=str))
        _expect(not any(key in text for text in shown), label, "the API key shows in the error")


# -- the pytest base class ------------------------------------------------------------------
class AdapterConformance:
    """Subclass as ``Test...`` and set ``harness_factory``; pytest then runs every check.

    Each test builds a fresh harness and runs its check in its own event loop
    (``asyncio.run``), so the tests are plain synchronous pytest tests: no plugin or mark
    is needed. ``test_error`` is parametrized over the harness's ``error_cases()``.
    """

    harness_factory: ClassVar[Callable[[], ConformanceHarness]]

    def pytest_generate_tests(self, metafunc: Any) -> None:
        """Parametrize ``test_error`` with the harness's error cases (a pytest hook)."""
        if "error_case" in metafunc.fixturenames:
            cases = list(type(self).harness_factory().error_cases())
            metafunc.parametrize("error_case", cases, ids=[case.name for case in cases])

    def run(self, check: Check, *args: Any) -> None:
        """Run one check against a fresh harness in a new event loop."""
        asyncio.run(run_check(type(self).harness_factory(), check, *args))

    def test_cold_and_lazy(self) -> None:
        self.run(check_cold_and_lazy)

    def test_one_request_per_subscription(self) -> None:
        self.run(check_one_request_per_subscription)

    def test_text(self) -> None:
        self.run(check_text)

    def test_tool_call(self) -> None:
        self.run(check_tool_call)

    def test_usage(self) -> None:
        self.run(check_usage)

    def test_reasoning(self) -> None:
        self.run(check_reasoning)

    def test_dispose_cancels(self) -> None:
        self.run(check_dispose_cancels)

    def test_take_cancels(self) -> None:
        self.run(check_take_cancels)

    def test_stream_timeout(self) -> None:
        self.run(check_stream_timeout)

    def test_error(self, error_case: ErrorCase) -> None:
        self.run(check_error, error_case)


# -- harnesses ------------------------------------------------------------------------------
_TEXT_PARTS = ["Hello ", "from the ", "conformance suite."]
_FAKE_SCRIPTS: Mapping[str, list[Any]] = {
    "text": [*(("text", part) for part in _TEXT_PARTS), ("finish", "stop")],
    "tool_call": [
        ("tool_call", {"id": "call_1", "name": TOOL_NAME, "arguments": dict(TOOL_ARGUMENTS)}),
        ("finish", "tool_calls"),
    ],
    "usage": [
        *(("text", part) for part in _TEXT_PARTS),
        ("usage", USAGE.model_dump(exclude_none=True)),
        ("finish", "stop"),
    ],
    "reasoning": [
        ("reasoning", REASONING),
        *(("text", part) for part in _TEXT_PARTS),
        ("usage", REASONING_USAGE.model_dump(exclude_none=True)),
        ("finish", "stop"),
    ],
    "hang": [("text", "partial"), ("delay", 3600), ("finish", "stop")],
    # The Fake has no transport to stall: its stall is the scripted timeout (as in ALLM's harness).
    "stall": [("text", "partial"), ("error_event", "timeout", {"message": "scripted stall"})],
    "preflight_error": [("preflight_error", "rate_limited", {"retry_after_ms": 500})],
    "error_event": [("text", "partial"), ("error_event", "rate_limited", {"retry_after_ms": 500})],
    "scripted_error": [("text", "partial"), ("error", "provider_unavailable")],
    "stream_error_cancelled": [("text", "partial"), ("stream_error", "cancelled", {})],
    "stream_error_truncated": [("text", "partial"), ("stream_error", "truncated", {})],
    "stream_error_malformed": [("text", "partial"), ("stream_error", "malformed_event", {})],
}
_FAKE_CASES = (
    ErrorCase(
        "preflight_error", AdapterError, "rate_limited", preflight=True, attributes={"retry_after_ms": 500}
    ),
    ErrorCase("no_scripted_response", AdapterError, "no_scripted_response", preflight=True),
    ErrorCase("error_event", AdapterError, "rate_limited", partial=True, attributes={"retry_after_ms": 500}),
    ErrorCase("scripted_error", AdapterError, "provider_unavailable", partial=True),
    ErrorCase("stream_error_cancelled", StreamError, "cancelled", partial=True),
    ErrorCase("stream_error_truncated", StreamError, "truncated", partial=True),
    ErrorCase("stream_error_malformed", StreamError, "malformed_event", partial=True),
)


class FakeHarness:
    """The Fake adapter (or an adapter wrapping it) driven by scripts.

    Requests and cancellations come from the scripts' ``cleanup_observer``: a subscription
    counts as a request when it ends, a ``"disposed"`` end as a cancellation. ``adapter``
    (default ``"fake"``) may be any adapter that honours the Fake's ``adapter_opts``.
    """

    def __init__(self, adapter: Any = "fake", name: str = "fake") -> None:
        self.adapter = adapter
        self.name = name
        self.api_key: str | None = None
        self.cleanup = CleanupCounter()

    async def setup(self) -> None:
        """Nothing to start: the Fake has no backend."""

    async def teardown(self) -> None:
        """Nothing to stop."""

    def engine(self, scenario: str) -> Engine:
        opts: dict[str, Any] = {"cleanup_observer": self.cleanup}
        if scenario == "no_scripted_response":
            opts["scripts"] = []
        else:
            opts["script"] = _FAKE_SCRIPTS[scenario]
        return Engine(adapter=self.adapter, adapter_opts=opts)

    def error_cases(self) -> Sequence[ErrorCase]:
        return _FAKE_CASES

    def requests(self) -> int:
        return len(self.cleanup.ends)

    def cancellations(self) -> Sequence[float]:
        return [at for how, at in self.cleanup.ends if how == "disposed"]


#: provider → (registered name, built-in adapter class (its default model and key variables), adapter_opts).
_PROVIDERS: Mapping[str, tuple[str, type[OpenAI | Anthropic | Gemini], Mapping[str, str]]] = {
    "openai": ("openai", OpenAI, {"endpoint": "chat_completions"}),
    "responses": ("openai", OpenAI, {"endpoint": "responses"}),
    "anthropic": ("anthropic", Anthropic, {}),
    "gemini": ("gemini", Gemini, {}),
}
#: SSE frames the emulator writes up to and including the first text delta, per wire format.
_FIRST_TEXT_FRAMES: Mapping[str, int] = {"openai": 2, "responses": 5, "anthropic": 4, "gemini": 1}
_REPLIES: Mapping[str, Reply] = {
    "text": Reply(text=TEXT, usage=None),
    "tool_call": Reply(
        text="", tool_calls=[ToolCallSpec(TOOL_NAME, dict(TOOL_ARGUMENTS))], finish="tool_calls", usage=None
    ),
    "usage": Reply(text=TEXT, usage=USAGE.model_dump(include={"input_tokens", "output_tokens"})),
    "reasoning": Reply(text=TEXT, thinking=REASONING, usage=REASONING_USAGE.model_dump(exclude_none=True)),
    "http_404": Reply(status=404),
    "http_429": Reply(status=429, headers={"Retry-After": "2"}),
    "http_503": Reply(status=503),
    "not_event_stream": Reply(content_type="text/html; charset=utf-8", body=b"<html>proxy</html>"),
}
_PARTIAL = Reply(text=["partial", " output"])
#: Scenarios that stream ``_PARTIAL``'s first delta, then the fault (a ``Reply`` field).
_PARTIAL_FAULTS: Mapping[str, str] = {
    "hang": "stall_after",
    "stall": "stall_after",
    "in_band_error": "error_after",
    "truncated": "truncate_after",
    "malformed_event": "malformed_after",
    "connection_reset": "reset_after",
}
#: Pre-flight refusals of the built-in adapters: engine params that cause them.
_UNSUPPORTED_PARAMS: Mapping[str, Mapping[str, Any]] = {
    "openai": {"n": 2},
    "responses": {"n": 2},
    "anthropic": {"response_format": {"type": "json_object"}},
}


class EmulatorHarness:
    """An HTTP adapter against a :class:`ProviderEmulator` speaking ``provider``'s wire format.

    ``provider`` is ``"openai"`` (Chat Completions), ``"responses"`` (OpenAI with
    ``endpoint="responses"``), ``"anthropic"`` or ``"gemini"``. ``adapter`` defaults to the
    built-in one; give your own adapter (class, instance or registered name) when it speaks
    that wire format and takes ``base_url`` and ``api_key`` in ``adapter_opts``. Requests
    and cancellations are the emulator's :attr:`~ProviderEmulator.requests` and
    :attr:`~ProviderEmulator.disconnects`.
    """

    def __init__(self, provider: str, *, adapter: Any = None, model: str | None = None) -> None:
        if provider not in _PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {sorted(_PROVIDERS)}")
        registered, builtin, self._opts = _PROVIDERS[provider]
        default_model, self._env_vars = builtin.default_model, builtin.env_vars
        self.provider = provider
        self.builtin = adapter is None
        self.adapter = registered if adapter is None else adapter
        self.model = model or default_model
        self.name = provider if adapter is None else f"{provider}:{_adapter_name(adapter)}"
        self.api_key: str | None = f"conformance-{provider}-key-0123456789"
        self.emulator = ProviderEmulator()

    async def setup(self) -> None:
        await self.emulator.start()

    async def teardown(self) -> None:
        await self.emulator.stop()

    def engine(self, scenario: str) -> Engine:
        opts: dict[str, Any] = {"base_url": self.emulator.base_url(self.provider), **self._opts}
        if scenario != "missing_key":
            opts["api_key"] = self.api_key
        params = _UNSUPPORTED_PARAMS[self.provider] if scenario == "unsupported_feature" else {}
        self.emulator.default = self._reply(scenario)
        return Engine(adapter=self.adapter, adapter_opts=opts, model=self.model, params=dict(params))

    def _reply(self, scenario: str) -> Reply:
        fault = _PARTIAL_FAULTS.get(scenario)
        if fault is not None:  # some text, then the fault right after the first text frame
            after: dict[str, Any] = {fault: _FIRST_TEXT_FRAMES[self.provider]}
            return dataclasses.replace(_PARTIAL, **after)
        if scenario == "http_401":
            return Reply(status=401, error_body=self._key_echo())
        return _REPLIES.get(scenario) or Reply()

    def _key_echo(self) -> dict[str, Any]:
        """A 401 body quoting the whole key (as some gateways do): the error must redact it."""
        message = f"Incorrect API key provided: {self.api_key}"
        error = {"type": "authentication_error", "code": 401, "status": "UNAUTHENTICATED", "message": message}
        return {"type": "error", "error": error}

    def error_cases(self) -> Sequence[ErrorCase]:
        cases = [
            ErrorCase("http_401", AdapterError, "authentication_failed", attributes={"status": 401}),
            ErrorCase("http_404", AdapterError, "invalid_request", attributes={"status": 404}),
            ErrorCase(
                "http_429", AdapterError, "rate_limited", attributes={"status": 429, "retry_after_ms": 2000}
            ),
            ErrorCase("http_503", AdapterError, "provider_unavailable", attributes={"status": 503}),
            ErrorCase("in_band_error", AdapterError, "provider_unavailable", partial=True),
            ErrorCase("truncated", StreamError, "truncated", partial=True),
            ErrorCase("malformed_event", StreamError, "malformed_event", partial=True),
            ErrorCase("connection_reset", AdapterError, "network_error", partial=True),
            ErrorCase("not_event_stream", AdapterError, "malformed_response"),
        ]
        if self.builtin and self.provider in _UNSUPPORTED_PARAMS:
            cases.append(
                ErrorCase("unsupported_feature", AdapterError, "unsupported_feature", preflight=True)
            )
        if self.builtin and not any(os.environ.get(name) for name in self._env_vars):
            cases.append(ErrorCase("missing_key", AdapterError, "authentication_failed", preflight=True))
        return cases

    def requests(self) -> int:
        return len(self.emulator.requests)

    def cancellations(self) -> Sequence[float]:
        return [d.time for d in self.emulator.disconnects]


def _adapter_name(adapter: Any) -> str:
    if isinstance(adapter, str):
        return adapter
    return str(getattr(adapter, "__name__", type(adapter).__name__))
