"""``retry`` and ``fallback``: marble diagrams in virtual time on the Fake, POST counts on the emulator.

Each Fake subscription here is a new ``stream_generate`` call (``reactivex.defer``), so
``scripts`` gives one script per attempt, as a provider gives one answer per request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import reactivex
from reactivex import Observable

import rx_allm as allm
from rx_allm.testing import (
    assert_completed,
    assert_error,
    record_events,
    script_from_marbles,
    timeline,
)
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import record

REQ = allm.request([allm.user("hi")])


def attempts(*scripts: list[Any]) -> tuple[Observable[allm.Event], list[float]]:
    """A source answering its n-th subscription with ``scripts[n]``; and the list of subscription times."""
    engine = allm.Engine(adapter="fake", adapter_opts={"scripts": [list(s) for s in scripts]})
    times: list[float] = []

    def subscribe(scheduler: Any) -> Observable[allm.Event]:
        times.append(float(scheduler.clock) if hasattr(scheduler, "clock") else -1.0)
        return allm.stream_generate(engine, REQ)

    return reactivex.defer(subscribe), times


def rate_limited(retry_after_ms: int | None = None) -> tuple[str, dict[str, Any]]:
    return ("error", {"reason": "rate_limited", "retry_after_ms": retry_after_ms})


OK = script_from_marbles("-a-b|", {"a": "Hel", "b": "lo"})


# -- retry: marble diagrams ----------------------------------------------------------------------
def test_a_rate_limit_before_content_waits_retry_after_then_resubscribes() -> None:
    source, times = attempts([("delay", 1.0), rate_limited(2000)], OK)
    records = record_events(source.pipe(allm.retry()))
    assert times == [0.0, 3.0]  # failed at 1, Retry-After 2 s
    assert timeline(records) == [
        (0.0, "message_started"),
        (4.0, "text_delta:Hel"),
        (6.0, "text_delta:lo"),
        (7.0, "text_completed:Hello"),
        (7.0, "message_completed:stop"),
        (7.0, "completed"),
    ]  # one message_started: the second attempt's is not delivered again


def test_backoff_doubles_from_base_delay_without_retry_after() -> None:
    failing = [("delay", 1.0), ("error", "provider_unavailable")]
    source, times = attempts(failing, failing, OK)
    records = record_events(source.pipe(allm.retry(attempts=3, base_delay=0.5, jitter=0)))
    assert times == [0.0, 1.5, 3.5]  # 1 + 0.5, then 1.5 + 1 + 1
    assert_completed(records, at=7.5)


def test_jitter_spreads_the_wait_within_its_fraction() -> None:
    seen = []
    for _ in range(20):
        source, times = attempts([("error", "timeout")], OK)
        record_events(source.pipe(allm.retry(base_delay=1.0, jitter=0.25)))
        seen.append(times[1])
    assert all(0.75 <= t <= 1.25 for t in seen)
    assert len(set(seen)) > 1


def test_max_delay_caps_the_backoff() -> None:
    failing = [("error", "network_error")]
    source, times = attempts(failing, failing, failing, OK)
    record_events(source.pipe(allm.retry(attempts=4, base_delay=2.0, max_delay=3.0, jitter=0)))
    assert times == [0.0, 2.0, 5.0, 8.0]


def test_an_error_after_content_is_delivered_and_never_retried() -> None:
    source, times = attempts(script_from_marbles("-a-#", {"a": "Hel"}, error="provider_unavailable"), OK)
    records = record_events(source.pipe(allm.retry()))
    assert times == [0.0]
    assert timeline(records)[:2] == [(0.0, "message_started"), (1.0, "text_delta:Hel")]
    assert_error(records, allm.AdapterError, "provider_unavailable", at=3.0)


def test_an_in_band_error_right_after_message_started_is_retried() -> None:
    source, times = attempts([("delay", 0.5), ("error_event", "provider_unavailable", {})], OK)
    records = record_events(source.pipe(allm.retry(base_delay=1.0, jitter=0)))
    assert times == [0.0, 1.5]
    assert [label for _, label in timeline(records)].count("message_started") == 1
    assert_completed(records)


def test_the_last_attempts_error_is_delivered() -> None:
    failing = [("error", "rate_limited")]
    source, times = attempts(failing, failing, failing, OK)
    records = record_events(source.pipe(allm.retry(attempts=3, base_delay=1.0, jitter=0)))
    assert times == [0.0, 1.0, 3.0]
    assert_error(records, allm.AdapterError, "rate_limited", at=3.0)


@pytest.mark.parametrize("reason", ["invalid_request", "authentication_failed", "content_filter"])
def test_reasons_outside_on_are_delivered_at_once(reason: str) -> None:
    source, times = attempts([("error", reason)], OK)
    records = record_events(source.pipe(allm.retry()))
    assert times == [0.0]
    assert_error(records, allm.AdapterError, reason, at=0.0)


def test_on_names_the_reasons_including_stream_errors() -> None:
    truncated = [("stream_error", "truncated", {})]
    source, times = attempts(truncated, OK)
    records = record_events(source.pipe(allm.retry(on=("truncated",), base_delay=1.0, jitter=0)))
    assert times == [0.0, 1.0]
    assert_completed(records)
    wrapped = [("stream_error", "adapter_error", {"cause": allm.AdapterError("timeout")})]
    source, times = attempts(wrapped, OK)
    assert_completed(record_events(source.pipe(allm.retry(base_delay=1.0))))
    assert len(times) == 2  # counted by the wrapped AdapterError's reason


def test_a_retry_after_longer_than_max_delay_is_not_waited() -> None:
    source, times = attempts([rate_limited(60_000)], OK)
    records = record_events(source.pipe(allm.retry(max_delay=30.0)))
    assert times == [0.0]
    assert assert_error(records, allm.AdapterError, "rate_limited", at=0.0).retry_after_ms == 60_000


def test_honor_retry_after_false_uses_the_backoff() -> None:
    source, times = attempts([rate_limited(9000)], OK)
    record_events(source.pipe(allm.retry(base_delay=0.5, jitter=0, honor_retry_after=False)))
    assert times == [0.0, 0.5]


def test_disposing_during_the_wait_cancels_the_next_attempt() -> None:
    source, times = attempts([rate_limited(5000)], OK)
    records = record_events(source.pipe(allm.retry()), dispose_at=2.0)
    assert times == [0.0]
    assert timeline(records) == [(0.0, "message_started")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"attempts": 0}, "attempts"), ({"jitter": 2}, "jitter"), ({"base_delay": -1}, "negative")],
)
def test_bad_arguments_raise_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        allm.retry(**kwargs)


# -- fallback ------------------------------------------------------------------------------------
def test_fallback_subscribes_to_the_next_source_at_once_before_content() -> None:
    primary, first = attempts([("delay", 2.0), ("error", "provider_unavailable")])
    backup, second = attempts(OK)
    records = record_events(primary.pipe(allm.fallback(backup)))
    assert (first, second) == ([0.0], [2.0])
    assert timeline(records)[0] == (0.0, "message_started")
    assert [label for _, label in timeline(records)].count("message_started") == 1
    assert_completed(records, at=6.0)


def test_fallback_after_content_delivers_the_error() -> None:
    primary, _ = attempts(script_from_marbles("a#", {"a": "Hi"}, error="provider_unavailable"))
    backup, second = attempts(OK)
    records = record_events(primary.pipe(allm.fallback(backup)))
    assert second == []
    assert_error(records, allm.AdapterError, "provider_unavailable")


def test_fallback_tries_each_source_in_turn_and_delivers_the_last_error() -> None:
    a, _ = attempts([("error", "rate_limited")])
    b, _ = attempts([("error", "timeout")])
    c, _ = attempts([("error", "network_error")])
    records = record_events(a.pipe(allm.fallback(b, c)))
    assert_error(records, allm.AdapterError, "network_error", at=0.0)
    d, _ = attempts([("error", "invalid_request")])
    e, never = attempts(OK)
    assert_error(record_events(d.pipe(allm.fallback(e))), allm.AdapterError, "invalid_request")
    assert never == []


def test_retry_then_fallback_compose() -> None:
    failing = [("error", "provider_unavailable")]
    primary, first = attempts(failing, failing)
    backup, second = attempts(OK)
    records = record_events(
        primary.pipe(allm.retry(attempts=2, base_delay=1.0, jitter=0), allm.fallback(backup))
    )
    assert (first, second) == ([0.0, 1.0], [1.0])
    assert_completed(records)


# -- over real sockets: the POST count ---------------------------------------------------------
@pytest.mark.asyncio
async def test_a_429_with_retry_after_then_success_is_two_posts_after_the_wait(
    emulator: ProviderEmulator,
) -> None:
    emulator.enqueue(Reply(status=429, headers={"Retry-After": "1"}), Reply(text="Second time lucky."))
    engine = allm.Engine(
        adapter="openai",
        model="gpt-4o-mini",
        adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "sk-test-retry-0123456789"},
    )
    rec = await record(allm.stream_generate(engine, REQ).pipe(allm.retry()), timeout=10)
    assert rec.completed and rec.error is None
    assert "".join(e.delta for e in rec.events if isinstance(e, allm.TextDelta)) == "Second time lucky."
    assert emulator.posts() == 2
    first, second = emulator.requests
    assert second.time - first.time >= 1.0  # Retry-After: 1 (seconds) was waited
    assert first.json == second.json


@pytest.mark.asyncio
async def test_an_in_band_error_after_a_text_delta_is_one_post_and_the_error(
    emulator: ProviderEmulator,
) -> None:
    emulator.enqueue(
        Reply(text="Partial answer then", error_after=5, error_type="overloaded_error"),
        Reply(text="never sent"),
    )
    engine = allm.Engine(
        adapter="anthropic",
        model="claude-sonnet-4-5",
        adapter_opts={"base_url": emulator.base_url("anthropic"), "api_key": "sk-ant-test-0123456789"},
    )
    rec = await record(allm.stream_generate(engine, REQ).pipe(allm.retry()), timeout=10)
    assert isinstance(rec.error, allm.AdapterError) and rec.error.reason == "provider_unavailable"
    assert [e.delta for e in rec.events if isinstance(e, allm.TextDelta)] == ["Partial", " answer"]
    await asyncio.sleep(0)  # a retry would be scheduled by now at the earliest
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_an_in_band_overload_before_any_text_is_retried(emulator: ProviderEmulator) -> None:
    emulator.enqueue(
        Reply(text="lost", error_after=3, error_type="overloaded_error"), Reply(text="Back again.")
    )
    engine = allm.Engine(
        adapter="anthropic",
        model="claude-sonnet-4-5",
        adapter_opts={"base_url": emulator.base_url("anthropic"), "api_key": "sk-ant-test-0123456789"},
    )
    rec = await record(allm.stream_generate(engine, REQ).pipe(allm.retry(base_delay=0.01)), timeout=10)
    assert rec.completed
    assert "".join(e.delta for e in rec.events if isinstance(e, allm.TextDelta)) == "Back again."
    assert [e.type for e in rec.events].count("message_started") == 1
    assert emulator.posts() == 2
