"""The public testing kit: the provider emulator, marble helpers and the conformance suite.

* :class:`ProviderEmulator` — a real aiohttp server on 127.0.0.1 speaking the OpenAI Chat
  Completions, OpenAI Responses, Anthropic and Gemini streaming formats, with scripted
  :class:`Reply` objects, fault injection and a record of requests and disconnects;
* marble helpers — :func:`script_from_marbles`, :func:`fake_engine`, :func:`record_events`,
  :func:`timeline`, :func:`assert_completed`, :func:`assert_error`, :class:`CleanupCounter`:
  pipelines on the Fake adapter in virtual time under ``reactivex.testing.TestScheduler``;
* a real-time recorder — :func:`record`, :func:`record_sync`, :class:`Recording`: every
  notification of one subscription, in order, and how it ended;
* the conformance suite — :class:`AdapterConformance` (a pytest base class),
  :class:`ConformanceHarness`, :class:`FakeHarness`, :class:`EmulatorHarness`, the
  ``check_*`` coroutines and :func:`run_check`.

See ``docs/testing.md``.
"""

from rx_allm.testing.conformance import (
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
    check_reasoning,
    check_stream_timeout,
    check_take_cancels,
    check_text,
    check_tool_call,
    check_usage,
    run_check,
)
from rx_allm.testing.emulator import Disconnect, ProviderEmulator, RecordedRequest, Reply, ToolCallSpec
from rx_allm.testing.marbles import (
    CleanupCounter,
    Recorded,
    assert_completed,
    assert_error,
    fake_engine,
    record_events,
    script_from_marbles,
    timeline,
)
from rx_allm.testing.recording import Recording, record, record_sync

__all__ = [
    "AdapterConformance",
    "CleanupCounter",
    "ConformanceFailure",
    "ConformanceHarness",
    "Disconnect",
    "EmulatorHarness",
    "ErrorCase",
    "FakeHarness",
    "ProviderEmulator",
    "Recorded",
    "RecordedRequest",
    "Recording",
    "Reply",
    "ToolCallSpec",
    "assert_completed",
    "assert_error",
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
    "fake_engine",
    "record",
    "record_events",
    "record_sync",
    "run_check",
    "script_from_marbles",
    "timeline",
]
