"""The conformance suite over the five built-in adapters, and over broken adapters it must reject.

The five ``Test...Conformance`` classes are the suite as a user runs it. The broken
adapters below each break one rule of the contract; the check for that rule must fail
with a message naming the breach.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.disposable import Disposable

import rx_allm as allm
from rx_allm.errors import AdapterError
from rx_allm.events import Event, MessageCompleted, RawChunk, TextDelta, ToolCallCompleted, ToolCallDelta
from rx_allm.providers.fake import Fake
from rx_allm.providers.openai import OpenAI
from rx_allm.testing import (
    AdapterConformance,
    ConformanceFailure,
    ConformanceHarness,
    EmulatorHarness,
    ErrorCase,
    FakeHarness,
    check_cold_and_lazy,
    check_dispose_cancels,
    check_error,
    check_one_request_per_subscription,
    check_stream_timeout,
    check_take_cancels,
    check_text,
    check_tool_call,
    check_usage,
    run_check,
)


class TestFakeConformance(AdapterConformance):
    harness_factory = FakeHarness


class TestOpenAIChatConformance(AdapterConformance):
    harness_factory = staticmethod(lambda: EmulatorHarness("openai"))


class TestOpenAIResponsesConformance(AdapterConformance):
    harness_factory = staticmethod(lambda: EmulatorHarness("responses"))


class TestAnthropicConformance(AdapterConformance):
    harness_factory = staticmethod(lambda: EmulatorHarness("anthropic"))


class TestGeminiConformance(AdapterConformance):
    harness_factory = staticmethod(lambda: EmulatorHarness("gemini"))


# -- the suite must reject broken adapters ---------------------------------------------------
class _Wrapping:
    """An adapter that delegates to a built-in one and alters its Observable (``wrap``)."""

    base: type = Fake

    def __init__(self) -> None:
        self.inner = self.base()

    def stream(self, request: allm.Request, opts: allm.StreamOptions) -> Observable[Event]:
        return self.wrap(self.inner.stream(request, opts))

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        return source


class EagerOpenAI(_Wrapping):
    """Sends its request in ``stream()`` and shares it: hot, not cold."""

    base = OpenAI

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        shared = source.pipe(ops.replay())
        shared.connect()
        return shared


class RetryingOpenAI(_Wrapping):
    """Retries a failed request: a request sent twice."""

    base = OpenAI

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        return source.pipe(ops.retry(2))


class TimeoutIgnoringOpenAI(OpenAI):
    """Always waits the default 60 s between bytes."""

    def stream(self, request: allm.Request, opts: allm.StreamOptions) -> Observable[Event]:
        return super().stream(request, dataclasses.replace(opts, stream_timeout=60.0))


class UnknownErrorsOpenAI(_Wrapping):
    """Reports every failure as ``AdapterError("unknown")``."""

    base = OpenAI

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        return source.pipe(ops.catch(lambda error, _: reactivex.throw(AdapterError("unknown", str(error)))))


class KeyLeakingOpenAI(_Wrapping):
    """Appends the key to its error messages after construction (past the library's redaction)."""

    base = OpenAI

    def stream(self, request: allm.Request, opts: allm.StreamOptions) -> Observable[Event]:
        key = opts.adapter_opts["api_key"].get_secret_value()

        def leak(error: Exception, _: object) -> Observable[Event]:
            assert isinstance(error, AdapterError)
            error.message = f"{error.message} (sent with {key})"
            return reactivex.throw(error)

        return self.inner.stream(request, opts).pipe(ops.catch(leak))


class UsageDroppingOpenAI(_Wrapping):
    base = OpenAI

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        return source.pipe(ops.filter(lambda event: not isinstance(event, RawChunk)))


def emit_after(
    source: Observable[Event], kind: type[Event], extra: Callable[[Any], Event]
) -> Observable[Event]:
    """``source`` with ``extra(event)`` emitted right after every event of type ``kind``."""

    def late(event: Event) -> Observable[Event]:
        return reactivex.of(event, extra(event)) if isinstance(event, kind) else reactivex.of(event)

    return source.pipe(ops.concat_map(late))


class LateEventFake(_Wrapping):
    """Emits a text delta after ``message_completed``."""

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        return emit_after(source, MessageCompleted, lambda _: TextDelta(delta="late"))


class LateToolDeltaFake(_Wrapping):
    """Emits an argument delta after the tool call completed."""

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        return emit_after(source, ToolCallCompleted, lambda e: ToolCallDelta(id=e.id, arguments_delta="{}"))


class CompletedThenErrorFake(_Wrapping):
    """Emits ``message_completed`` before its terminal error."""

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        completed = MessageCompleted(message=allm.assistant("partial"), finish_reason="error")
        return source.pipe(
            ops.catch(lambda error, _: reactivex.concat(reactivex.of(completed), reactivex.throw(error)))
        )


class SwallowingFake(_Wrapping):
    """Turns every error into a plain completion."""

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        return source.pipe(ops.catch(lambda _error, _: reactivex.empty()))


class DeferredPreflightFake(_Wrapping):
    """Reports its pre-flight failures through ``on_error`` instead of raising."""

    def stream(self, request: allm.Request, opts: allm.StreamOptions) -> Observable[Event]:
        try:
            return self.inner.stream(request, opts)
        except AdapterError as error:
            return reactivex.throw(error)


class SlowDisposeFake(_Wrapping):
    """Cancels one second after the dispose."""

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        def subscribe(observer: Any, scheduler: Any = None) -> Disposable:
            inner = source.subscribe(observer, scheduler=scheduler)
            loop = asyncio.get_running_loop()
            return Disposable(lambda: loop.call_later(1.0, inner.dispose))

        return reactivex.create(subscribe)


class UndisposableFake(_Wrapping):
    """Never cancels."""

    def wrap(self, source: Observable[Event]) -> Observable[Event]:
        def subscribe(observer: Any, scheduler: Any = None) -> Disposable:
            source.subscribe(observer, scheduler=scheduler)
            return Disposable()

        return reactivex.create(subscribe)


def fake_case(name: str) -> ErrorCase:
    return next(case for case in FakeHarness().error_cases() if case.name == name)


def http_case(name: str) -> ErrorCase:
    return next(case for case in EmulatorHarness("openai").error_cases() if case.name == name)


BROKEN = [
    pytest.param(
        lambda: EmulatorHarness("openai", adapter=EagerOpenAI),
        check_cold_and_lazy,
        (),
        r"1 request\(s\) sent before any subscription",
        id="eager-request-not-lazy",
    ),
    pytest.param(
        lambda: EmulatorHarness("openai", adapter=EagerOpenAI),
        check_one_request_per_subscription,
        (),
        r"two subscriptions: 1 request\(s\) sent, expected 2",
        id="hot-shared-request",
    ),
    pytest.param(
        lambda: EmulatorHarness("openai", adapter=RetryingOpenAI),
        check_error,
        (http_case("http_503"),),
        r"http_503: 2 request\(s\) sent, expected 1",
        id="retry-sends-twice",
    ),
    pytest.param(
        lambda: EmulatorHarness("openai", adapter=TimeoutIgnoringOpenAI),
        check_stream_timeout,
        (),
        r"no terminal notification within",
        id="stream-timeout-ignored",
    ),
    pytest.param(
        lambda: EmulatorHarness("openai", adapter=UnknownErrorsOpenAI),
        check_error,
        (http_case("truncated"),),
        r"expected StreamError\('truncated'\), got AdapterError",
        id="wrong-error-type",
    ),
    pytest.param(
        lambda: EmulatorHarness("openai", adapter=KeyLeakingOpenAI),
        check_error,
        (http_case("http_401"),),
        r"the API key shows in the error",
        id="key-in-error",
    ),
    pytest.param(
        lambda: EmulatorHarness("openai", adapter=UsageDroppingOpenAI),
        check_usage,
        (),
        r"no raw_chunk\(kind='usage'\)",
        id="usage-missing",
    ),
    pytest.param(
        lambda: FakeHarness(adapter=LateEventFake),
        check_text,
        (),
        r"not preceded by exactly one message_completed as the last event",
        id="event-after-message-completed",
    ),
    pytest.param(
        lambda: FakeHarness(adapter=LateToolDeltaFake),
        check_tool_call,
        (),
        r"a delta of tool call 'call_1' after its tool_call_completed",
        id="tool-delta-after-completed",
    ),
    pytest.param(
        lambda: FakeHarness(adapter=CompletedThenErrorFake),
        check_error,
        (fake_case("error_event"),),
        r"a message_completed before the terminal on_error",
        id="message-completed-then-error",
    ),
    pytest.param(
        lambda: FakeHarness(adapter=SwallowingFake),
        check_error,
        (fake_case("stream_error_truncated"),),
        r"expected StreamError\('truncated'\) as on_error, saw .* on_completed",
        id="error-swallowed",
    ),
    pytest.param(
        lambda: FakeHarness(adapter=DeferredPreflightFake),
        check_error,
        (fake_case("preflight_error"),),
        r"raised by stream_generate, nothing raised",
        id="preflight-deferred",
    ),
    pytest.param(
        lambda: FakeHarness(adapter=SlowDisposeFake),
        check_dispose_cancels,
        (),
        r"cancellation observed after 1\d\d\d ms \(bound 500 ms\)",
        id="dispose-too-slow",
    ),
    pytest.param(
        lambda: FakeHarness(adapter=UndisposableFake),
        check_take_cancels,
        (),
        r"the backend saw no cancellation",
        id="take-never-cancels",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("harness_factory", "check", "args", "failure"), BROKEN)
async def test_the_suite_rejects_a_broken_adapter(
    harness_factory: Callable[[], ConformanceHarness], check: Any, args: tuple[Any, ...], failure: str
) -> None:
    with pytest.raises(ConformanceFailure, match=failure):
        await run_check(harness_factory(), check, *args)


def test_the_base_class_runs_each_check_on_a_fresh_harness() -> None:
    class TestLate(AdapterConformance):
        harness_factory = staticmethod(lambda: FakeHarness(adapter=LateEventFake))

    suite = TestLate()
    suite.test_dispose_cancels()  # never reaches message_completed: the late event does not show
    with pytest.raises(ConformanceFailure, match="message_completed as the last event"):
        suite.test_text()


def test_an_error_case_reason_must_exist() -> None:
    with pytest.raises(ValueError, match="StreamError has no reason 'rate_limited'"):
        ErrorCase("bad", allm.StreamError, "rate_limited")


def test_an_unknown_wire_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider 'cohere'"):
        EmulatorHarness("cohere")
