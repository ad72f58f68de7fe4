"""The fault matrix: every HTTP adapter by every fault, each ending in its exact typed error.

Adapters: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages, Gemini. Faults:
HTTP error statuses (with each provider's own error body), ``Retry-After`` in its three
forms, non-SSE bodies, connection refused and reset, truncation, stalls, slow headers,
malformed and invalid UTF-8 frames, a 64 MiB ``data:`` line, and each provider's in-band
error event. All of them are served by the emulator over real sockets on 127.0.0.1.

Every case subscribes once with ``record`` and once through ``generate``, concurrently
(the 64 MiB line once, folded by ``generate``'s :class:`StreamCollector`, so that only one
such stream is in memory at a time), and checks: the error's type, reason, status,
provider and ``retry_after_ms`` against the table :data:`EXPECTED`; what arrived before
the error (nothing before an HTTP-level failure, ``message_started`` and the partial text
before a mid-stream one); that no ``message_completed`` was emitted and nothing followed
the terminal notification; that ``generate`` kept the partial output with
``finish_reason="error"``; and that each subscription sent exactly one request.

The fault list (:data:`FAULTS`, :data:`TARGETS`) is reused by ``test_secrets.py``.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import rx_allm as allm
from rx_allm.collector import StreamCollector
from rx_allm.events import MessageCompleted, MessageStarted, TextDelta
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import Recording, record
from rx_allm.testing.wire import render_body, split_frames

KEY = "fault-matrix-key-5d1c9e7a3b"
TEXT = "one two three four"
PARTIAL = "one two"  # what arrives before a fault injected after the second text frame
HUGE_BYTES = 64 * 1024 * 1024
# Above the default max_event_bytes (32 MiB): the case states the limit it needs — the line
# plus its event's JSON (Responses repeats the text in ``response.completed``).
HUGE_EVENT_LIMIT = HUGE_BYTES + 64 * 1024


# -- the adapters under test ----------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One HTTP adapter configuration and where its first text frame sits in a rendered stream."""

    key: str  # the column of EXPECTED
    route: str  # the emulator's provider name
    adapter: str
    provider: str  # AdapterError/StreamError.provider
    label: str  # the provider's name in error messages
    env_var: str
    first_text: int  # index of the first text frame in the emulator's rendering
    adapter_opts: dict[str, Any] = field(default_factory=dict)

    def engine(self, base: str, **adapter_opts: Any) -> allm.Engine:
        """An engine for this target against ``base`` (the emulator's or a dead server's URL)."""
        url = base + "/v1" if self.adapter == "openai" else base
        opts = {"base_url": url, **self.adapter_opts, **adapter_opts}
        return allm.Engine(adapter=self.adapter, adapter_opts=opts, model="emulated-model")

    @property
    def fault_at(self) -> int:
        """The frame index after which a mid-stream fault leaves exactly :data:`PARTIAL` delivered."""
        return self.first_text + 2


TARGETS = {
    # Chat: a role chunk, then one chunk per delta. Responses: created, in_progress,
    # output_item.added, content_part.added. Anthropic: message_start, block start, ping.
    t.key: t
    for t in (
        Target("chat", "openai", "openai", "openai", "OpenAI", "OPENAI_API_KEY", 1),
        Target(
            "responses",
            "responses",
            "openai",
            "openai",
            "OpenAI",
            "OPENAI_API_KEY",
            4,
            {"endpoint": "responses"},
        ),
        Target("anthropic", "anthropic", "anthropic", "anthropic", "Anthropic", "ANTHROPIC_API_KEY", 3),
        Target("gemini", "gemini", "gemini", "gemini", "Gemini", "GEMINI_API_KEY", 0),
    )
}


# -- the faults ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """How to provoke one failure; ``reply`` is None when no server should answer at all."""

    name: str
    reply: Callable[[Target], Reply] | None
    options: dict[str, Any] = field(default_factory=dict)  # call options (timeouts)
    mid_stream: bool = False  # the stream opened: message_started and PARTIAL arrive first
    alone: bool = False  # one subscription at a time (its memory stays bounded)


def _status(code: int, **fields: Any) -> Fault:
    return Fault(f"http_{code}", lambda t: Reply(status=code, **fields))


def _mid(name: str, make: Callable[[Target], Reply], **options: Any) -> Fault:
    return Fault(name, make, options, mid_stream=True)


def _retry_date() -> str:
    return email.utils.formatdate(time.time() + 30, usegmt=True)


#: A plain "bad request" body of each provider's shape (no context-length or filter marker).
PLAIN_400 = {
    "openai": {"error": {"message": "Invalid request.", "type": "invalid_request_error", "code": None}},
    "responses": {"error": {"message": "Invalid request.", "type": "invalid_request_error", "code": None}},
    "anthropic": {"type": "error", "error": {"type": "invalid_request_error", "message": "bad field"}},
    "gemini": {"error": {"code": 400, "message": "Invalid JSON payload.", "status": "INVALID_ARGUMENT"}},
}
#: ``error_type`` of the emulator's in-band error frame, per provider.
OVERLOADED = {"openai": "server_error", "responses": "server_error", "anthropic": "overloaded_error"}
RATE_LIMITED = {"openai": "rate_limit_exceeded", "responses": "rate_limit_exceeded"}
RATE_LIMITED |= {"anthropic": "rate_limit_error", "gemini": "RESOURCE_EXHAUSTED"}


def _responses_error_event(target: Target) -> Reply:
    """A Responses stream cut by a top-level ``error`` event (the emulator renders ``response.failed``)."""
    frames = split_frames(render_body("responses", Reply(text=TEXT)))[: target.fault_at]
    error = (
        b'event: error\ndata: {"type":"error","code":"rate_limit_exceeded",'
        b'"message":"Rate limit reached for requests","param":null,"sequence_number":7}\n\n'
    )
    return Reply(body=b"".join(frames) + error)


FAULTS: list[Fault] = [
    _status(400),  # each provider's own 400 body (OpenAI's and Anthropic's say "context length")
    Fault("http_400_plain", lambda t: Reply(status=400, error_body=PLAIN_400[t.route])),
    _status(401),
    _status(403),
    _status(404),
    _status(413),
    Fault("http_429_seconds", lambda t: Reply(status=429, headers={"Retry-After": "7"})),
    Fault("http_429_date", lambda t: Reply(status=429, headers={"Retry-After": _retry_date()})),
    Fault("http_429_ms", lambda t: Reply(status=429, headers={"retry-after-ms": "1500"})),
    _status(500),
    _status(502),
    _status(503),
    _status(504),
    _status(529),
    Fault("html_200", lambda t: Reply(body=b"<html><body>Sign in</body></html>", content_type="text/html")),
    Fault(
        "json_200",
        lambda t: Reply(body=b'{"id": "x", "object": "chat.completion"}', content_type="application/json"),
    ),
    Fault("connection_refused", None),
    _mid("reset", lambda t: Reply(text=TEXT, reset_after=t.fault_at)),
    _mid("truncated", lambda t: Reply(text=TEXT, truncate_after=t.fault_at)),
    _mid("stall", lambda t: Reply(text=TEXT, stall_after=t.fault_at), stream_timeout=0.2),
    Fault("slow_headers", lambda t: Reply(text=TEXT, header_delay=5.0), {"request_timeout": 0.2}),
    _mid("malformed_json", lambda t: Reply(text=TEXT, malformed_after=t.fault_at)),
    _mid("invalid_utf8", lambda t: Reply(text=TEXT, invalid_utf8_after=t.fault_at)),
    Fault(
        "huge_line",
        lambda t: Reply(text=" end", huge_line_bytes=HUGE_BYTES),
        {"max_event_bytes": HUGE_EVENT_LIMIT},
        alone=True,
    ),
    _mid(
        "in_band_overloaded",
        lambda t: Reply(text=TEXT, error_after=t.fault_at, error_type=OVERLOADED.get(t.route, "UNAVAILABLE")),
    ),
    _mid(
        "in_band_rate_limited",
        lambda t: Reply(text=TEXT, error_after=t.fault_at, error_type=RATE_LIMITED[t.route]),
    ),
    _mid("in_band_error_event", _responses_error_event),
]
FAULTS_BY_NAME = {fault.name: fault for fault in FAULTS}


# -- the expected outcome of every (fault, adapter) ------------------------------------------------
@dataclass(frozen=True)
class Expect:
    """The terminal error: class, reason, HTTP status, ``retry_after_ms`` (a value or a range)."""

    type: type[allm.RxAllmError] | None  # None: the stream completes
    reason: str | None = None
    status: int | None = None
    retry_after_ms: int | tuple[int, int] | None = None


def A(reason: str, status: int | None = None, retry_after_ms: int | tuple[int, int] | None = None) -> Expect:
    return Expect(allm.AdapterError, reason, status, retry_after_ms)


def S(reason: str) -> Expect:
    return Expect(allm.StreamError, reason)


def ALL(expect: Expect) -> tuple[Expect, Expect, Expect, Expect]:
    return (expect, expect, expect, expect)


COMPLETES = Expect(None)
NA = None  # the fault does not exist for this adapter

# fmt: off
#: fault → expected outcome for (chat, responses, anthropic, gemini).
EXPECTED: dict[str, tuple[Expect | None, Expect | None, Expect | None, Expect | None]] = {
    #                        chat                              responses                         anthropic                         gemini  # noqa: E501
    "http_400":             (A("context_length_exceeded", 400), A("context_length_exceeded", 400), A("context_length_exceeded", 400), A("invalid_request", 400)),  # noqa: E501
    "http_400_plain":       ALL(A("invalid_request", 400)),
    "http_401":             ALL(A("authentication_failed", 401)),
    "http_403":             ALL(A("authentication_failed", 403)),
    "http_404":             ALL(A("invalid_request", 404)),
    "http_413":             ALL(A("invalid_request", 413)),
    "http_429_seconds":     ALL(A("rate_limited", 429, 7000)),
    "http_429_date":        ALL(A("rate_limited", 429, (27_000, 31_000))),
    "http_429_ms":          ALL(A("rate_limited", 429, 1500)),
    "http_500":             ALL(A("provider_unavailable", 500)),
    "http_502":             ALL(A("provider_unavailable", 502)),
    "http_503":             ALL(A("provider_unavailable", 503)),
    "http_504":             ALL(A("provider_unavailable", 504)),
    "http_529":             ALL(A("provider_unavailable", 529)),
    "html_200":             ALL(A("malformed_response", 200)),
    "json_200":             ALL(A("malformed_response", 200)),
    "connection_refused":   ALL(A("network_error")),
    "reset":                ALL(A("network_error")),
    "truncated":            ALL(S("truncated")),
    "stall":                ALL(A("timeout")),
    "slow_headers":         ALL(A("timeout")),
    "malformed_json":       ALL(S("malformed_event")),
    "invalid_utf8":         ALL(S("malformed_event")),
    "huge_line":            ALL(COMPLETES),
    "in_band_overloaded":   ALL(A("provider_unavailable")),
    "in_band_rate_limited": ALL(A("rate_limited")),
    "in_band_error_event":  (NA,                               A("rate_limited"),                NA,                               NA),  # noqa: E501
}
# fmt: on
COLUMNS = ("chat", "responses", "anthropic", "gemini")
assert set(EXPECTED) == set(FAULTS_BY_NAME)


def expected(fault: str, target: str) -> Expect | None:
    return EXPECTED[fault][COLUMNS.index(target)]


def cases() -> Iterator[Any]:
    """Every applicable (target, fault) pair, as pytest params."""
    for fault in FAULTS:
        for target in COLUMNS:
            if expected(fault.name, target) is not None:
                yield pytest.param(target, fault.name, id=f"{target}-{fault.name}")


# -- running one case ------------------------------------------------------------------------------
REQUEST = allm.request([allm.user("hi")])


@dataclass
class Outcome:
    """What one ``record`` subscription and one ``generate`` call saw."""

    recording: Recording
    response: allm.Response


def refused_url(holder: socket.socket) -> str:
    """A URL whose port is bound but not listening: every connection attempt is refused."""
    holder.bind(("127.0.0.1", 0))
    return f"http://127.0.0.1:{holder.getsockname()[1]}"


async def run_fault(emu: ProviderEmulator, target: Target, fault: Fault) -> Outcome:
    """Serve ``fault`` to one ``record`` subscription and one ``generate`` call."""
    engine = target.engine(emu.url, api_key=KEY)
    with socket.socket() as holder:
        if fault.reply is None:
            engine = target.engine(refused_url(holder), api_key=KEY)
        else:
            emu.enqueue(*(fault.reply(target) for _ in range(subscriptions(fault))))
        stream = allm.stream_generate(engine, REQUEST, **fault.options)
        if fault.alone:
            recording = await record(stream, timeout=60)
            collector = StreamCollector()
            for event in recording.events:
                collector.apply(event)
            return Outcome(recording, collector.to_response())
        recording, response = await asyncio.gather(
            record(stream), allm.generate(engine, REQUEST, **fault.options)
        )
    return Outcome(recording, response)


def subscriptions(fault: Fault) -> int:
    """How many requests a case sends: ``record`` and ``generate``, or one for a fault run alone."""
    return 0 if fault.reply is None else 1 if fault.alone else 2


def check_error(error: BaseException | None, expect: Expect, target: Target) -> None:
    """``error`` is exactly the expected typed error."""
    assert expect.type is not None
    assert type(error) is expect.type, repr(error)
    assert isinstance(error, (allm.AdapterError, allm.StreamError))
    assert (error.reason, error.provider) == (expect.reason, target.provider), repr(error)
    if isinstance(error, allm.AdapterError):
        assert error.status == expect.status, repr(error)
        if isinstance(expect.retry_after_ms, tuple):
            low, high = expect.retry_after_ms
            assert error.retry_after_ms is not None and low <= error.retry_after_ms <= high, repr(error)
        else:
            assert error.retry_after_ms == expect.retry_after_ms, repr(error)
        if expect.status is not None and expect.status >= 300:
            assert error.message.startswith(f"{target.label} HTTP {expect.status}"), error.message
            assert error.request_id is not None and error.request_id.startswith("req_")


def text_of(events: list[Any]) -> str:
    return "".join(e.delta for e in events if isinstance(e, TextDelta))


def check_outcome(outcome: Outcome, target: Target, fault: Fault) -> None:
    """The whole contract of one failed (or, for the huge line, completed) case."""
    expect = expected(fault.name, target.key)
    assert expect is not None
    rec, response = outcome.recording, outcome.response
    assert rec.ended and not rec.late, rec.late
    if expect.type is None:
        check_completed(rec, response)
        return
    assert not rec.completed
    assert not any(isinstance(e, MessageCompleted) for e in rec.events)
    check_error(rec.error, expect, target)
    check_error(response.error, expect, target)
    kinds = [e.type for e in rec.events]
    if fault.mid_stream:
        assert kinds == ["message_started", "text_delta", "text_delta"], kinds
        assert text_of(rec.events) == PARTIAL
    else:
        assert kinds == [], kinds
    assert response.finish_reason == "error" and not response.ok
    assert response.output_text == (PARTIAL if fault.mid_stream else "")
    assert response.message.content == response.output_text


def check_completed(rec: Recording, response: allm.Response) -> None:
    """The 64 MiB line arrived as one intact text delta and the stream completed normally."""
    assert rec.completed and rec.error is None
    assert isinstance(rec.events[0], MessageStarted) and isinstance(rec.events[-1], MessageCompleted)
    assert sum(isinstance(e, MessageCompleted) for e in rec.events) == 1
    deltas = [e.delta for e in rec.events if isinstance(e, TextDelta)]
    assert len(deltas[0]) == HUGE_BYTES and deltas[0] == "x" * HUGE_BYTES
    assert deltas[1:] == [" end"]
    assert response.finish_reason == "stop" and response.error is None
    assert len(response.output_text) == HUGE_BYTES + 4 and response.output_text.endswith("x end")


# -- the matrix ---------------------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(("target_name", "fault_name"), list(cases()))
async def test_fault(emulator: ProviderEmulator, target_name: str, fault_name: str) -> None:
    target, fault = TARGETS[target_name], FAULTS_BY_NAME[fault_name]
    outcome = await run_fault(emulator, target, fault)
    check_outcome(outcome, target, fault)
    assert emulator.posts() == subscriptions(fault)


def test_table_covers_every_adapter_and_fault() -> None:
    """Every fault has an outcome for every adapter, except the Responses-only ``error`` event."""
    missing = [(f, c) for f in EXPECTED for c in COLUMNS if expected(f, c) is None]
    assert missing == [("in_band_error_event", c) for c in ("chat", "anthropic", "gemini")]
    assert len(list(cases())) == len(FAULTS) * len(COLUMNS) - 3
