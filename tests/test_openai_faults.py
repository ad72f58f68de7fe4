"""HTTP and stream faults of the OpenAI adapter, injected by the emulator over real sockets.

Every case asserts the exact error type and reason, that the partial output (if any)
arrived before the error, and that nothing — in particular no ``message_completed`` —
follows it. The faults whose every check the fault matrix makes (``test_fault_matrix.py``:
statuses, ``Retry-After`` forms, resets, truncation, invalid UTF-8, for both endpoints)
are not repeated here; these are the OpenAI-specific details beyond it.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from helpers import OPENAI_KEY, openai_engine

import rx_allm as allm
from rx_allm.events import MessageCompleted, TextDelta
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import Recording, record

REQ = allm.request([allm.user("hi")])
ENDPOINTS = [{}, {"endpoint": "responses"}]
ENDPOINT_IDS = ["chat", "responses"]
# (adapter_opts, index of the first text frame): Responses opens with four lifecycle events.
STREAMS = [pytest.param({}, 1, id="chat"), pytest.param({"endpoint": "responses"}, 4, id="responses")]


async def fail(emu: ProviderEmulator, reply: Reply, **options: Any) -> Recording:
    """Serve ``reply`` once and record the stream; it must end with an error and nothing after it."""
    emu.enqueue(reply)
    adapter_opts = options.pop("adapter_opts", {})
    rec = await record(allm.stream_generate(openai_engine(emu, **adapter_opts), REQ, **options))
    assert rec.error is not None and not rec.completed and not rec.late
    assert not any(isinstance(e, MessageCompleted) for e in rec.events)
    assert emu.posts() == 1
    return rec


def text_of(rec: Recording) -> str:
    return "".join(e.delta for e in rec.events if isinstance(e, TextDelta))


def adapter_error(rec: Recording, reason: str, status: int | None = None) -> allm.AdapterError:
    error = rec.error
    assert type(error) is allm.AdapterError, error
    assert error.reason == reason and error.provider == "openai"
    assert error.status == status
    return error


# -- HTTP status errors -------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "context_length_exceeded"),  # the emulator's 400 body is OpenAI's context-length error
        (401, "authentication_failed"),
        (403, "authentication_failed"),
        (404, "invalid_request"),
        (429, "rate_limited"),
        (500, "provider_unavailable"),
        (503, "provider_unavailable"),
    ],
)
@pytest.mark.parametrize("adapter_opts", ENDPOINTS, ids=ENDPOINT_IDS)
async def test_http_status(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any], status: int, reason: str
) -> None:
    rec = await fail(emulator, Reply(status=status), adapter_opts=adapter_opts)
    error = adapter_error(rec, reason, status)
    assert rec.events == []  # nothing at all before an HTTP error (not even message_started)
    assert error.message.startswith(f"OpenAI HTTP {status}: ")
    assert error.request_id and error.request_id.startswith("req_")
    assert "error_type" in error.metadata


@pytest.mark.asyncio
async def test_context_length_by_message_marker_and_bare_string_error(emulator: ProviderEmulator) -> None:
    body = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens.",
            "type": "invalid_request_error",
        }
    }
    adapter_error(await fail(emulator, Reply(status=400, error_body=body)), "context_length_exceeded", 400)
    emulator.requests.clear()
    rec = await fail(emulator, Reply(status=400, error_body={"error": "bad thing happened"}))
    assert adapter_error(rec, "invalid_request", 400).message == "OpenAI HTTP 400: bad thing happened"


@pytest.mark.asyncio
async def test_content_filter_http_error(emulator: ProviderEmulator) -> None:
    body = {"error": {"message": "The response was filtered", "type": None, "code": "content_filter"}}
    adapter_error(await fail(emulator, Reply(status=400, error_body=body)), "content_filter", 400)


@pytest.mark.asyncio
async def test_large_error_body_is_read_whole(emulator: ProviderEmulator) -> None:
    message = "This model's maximum context length is 128000 tokens. " + "x" * 400_000
    body = {"error": {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}}
    error = adapter_error(
        await fail(emulator, Reply(status=400, error_body=body)), "context_length_exceeded", 400
    )
    assert error.metadata["error_code"] == "context_length_exceeded"


@pytest.mark.asyncio
async def test_401_echoed_key_is_redacted_everywhere(emulator: ProviderEmulator) -> None:
    leaked = "sk-proj-abcdef123456"
    body = {
        "error": {
            "message": f"Incorrect API key provided: {leaked}.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    rec = await fail(emulator, Reply(status=401, error_body=body), api_key=leaked)
    error = adapter_error(rec, "authentication_failed", 401)
    assert emulator.requests[0].headers["authorization"] == f"Bearer {leaked}"
    for text in (error.message, repr(error), str(error), json.dumps(error.to_dict())):
        assert leaked not in text and "abcdef123456" not in text
    assert "[REDACTED]" in error.message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("headers", "expected_ms"),
    [({"Retry-After": "0.25"}, 250)],  # whole seconds, milliseconds and dates: the fault matrix
)
async def test_429_retry_after(emulator: ProviderEmulator, headers: dict[str, str], expected_ms: int) -> None:
    error = adapter_error(await fail(emulator, Reply(status=429, headers=headers)), "rate_limited", 429)
    assert error.retry_after_ms == expected_ms and error.retryable


@pytest.mark.asyncio
async def test_request_id_from_x_request_id(emulator: ProviderEmulator) -> None:
    reply = Reply(status=500, headers={"x-request-id": "req_fixed_42"})
    assert (
        adapter_error(await fail(emulator, reply), "provider_unavailable", 500).request_id == "req_fixed_42"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("adapter_opts", ENDPOINTS, ids=ENDPOINT_IDS)
async def test_html_200_is_malformed_response(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any]
) -> None:
    reply = Reply(body=b"<html><body>Gateway login</body></html>", content_type="text/html")
    error = adapter_error(await fail(emulator, reply, adapter_opts=adapter_opts), "malformed_response", 200)
    assert "text/html" in error.message


# -- timeouts and the network -----------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(("adapter_opts", "first"), STREAMS)
async def test_stall_hits_stream_timeout_after_partial_text(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any], first: int
) -> None:
    reply = Reply(text="one two three four", stall_after=first + 2)
    started = time.monotonic()
    rec = await fail(emulator, reply, adapter_opts=adapter_opts, stream_timeout=0.2)
    elapsed = time.monotonic() - started
    adapter_error(rec, "timeout")
    assert "stream_timeout" in rec.error.message  # type: ignore[union-attr]
    assert text_of(rec) == "one two"
    assert 0.2 <= elapsed < 2.0
    await emulator.wait_for_disconnects(1)


@pytest.mark.asyncio
async def test_slow_headers_hit_request_timeout(emulator: ProviderEmulator) -> None:
    started = time.monotonic()
    rec = await fail(emulator, Reply(header_delay=3.0), request_timeout=0.2)
    assert time.monotonic() - started < 2.0
    adapter_error(rec, "timeout")
    assert rec.events == []
    await emulator.wait_for_disconnects(1)


@pytest.mark.asyncio
async def test_connection_refused_is_network_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    eng = allm.Engine(
        adapter="openai",
        adapter_opts={"base_url": f"http://127.0.0.1:{port}/v1", "api_key": OPENAI_KEY},
        model="gpt-4o",
    )
    rec = await record(allm.stream_generate(eng, REQ))
    error = rec.error
    assert type(error) is allm.AdapterError and error.reason == "network_error" and error.retryable
    assert rec.events == [] and not rec.completed
    response = await allm.generate(eng, REQ)
    assert response.finish_reason == "error" and response.output_text == ""
    assert isinstance(response.error, allm.AdapterError) and response.error.reason == "network_error"


# -- broken streams ---------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize(("adapter_opts", "first"), STREAMS)
async def test_malformed_frame_is_malformed_event(
    emulator: ProviderEmulator, adapter_opts: dict[str, Any], first: int
) -> None:
    reply = Reply(text="one two three", malformed_after=first + 2)
    rec = await fail(emulator, reply, adapter_opts=adapter_opts)
    error = rec.error
    assert type(error) is allm.StreamError and error.reason == "malformed_event"
    assert error.provider == "openai" and error.event_index == first + 3
    assert text_of(rec) == "one two"


@pytest.mark.asyncio
async def test_chat_truncated_right_after_usage_chunk_is_not_success(emulator: ProviderEmulator) -> None:
    """No finish_reason and no [DONE]: even a body that looks nearly complete is truncated."""
    body = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    rec = await fail(emulator, Reply(body=body))
    assert type(rec.error) is allm.StreamError and rec.error.reason == "truncated"
    assert text_of(rec) == "Hi"
