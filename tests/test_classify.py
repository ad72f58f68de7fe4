"""Error classification as pure functions (no sockets): statuses, bodies, in-band errors, Retry-After."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import pytest

from rx_allm._classify import (
    ErrorBody,
    classify,
    decode_body,
    http_error,
    in_band_error,
    parse_retry_after,
    request_id_of,
)
from rx_allm.providers.anthropic import DIALECT as ANTHROPIC
from rx_allm.providers.gemini import DIALECT as GEMINI
from rx_allm.providers.openai import DIALECT as OPENAI

NOW = 1_700_000_000.0


def anthropic(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def gemini(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "7"}, 7000),
        ({"retry-after": "0.25"}, 250),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1500),  # the millisecond header wins
        ({"Retry-After": "-3"}, 0),  # clamped at zero
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30_000),
        ({"Retry-After": "99999999"}, 24 * 3600 * 1000),  # clamped at a day
    ],
)
def test_retry_after(headers: dict[str, str], expected: int | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_request_id_and_body_decoding() -> None:
    assert request_id_of({"X-Request-Id": "req_1", "cf-ray": "ray"}) == "req_1"
    assert request_id_of({"CF-RAY": "ray"}) == "ray"
    assert request_id_of({}) is None
    assert decode_body(b"") is None
    assert decode_body(b'{"a": 1}') == {"a": 1}
    assert decode_body(b"<html>\xff</html>") == "<html>\ufffd</html>"


@pytest.mark.parametrize(
    ("dialect", "status", "body", "reason"),
    [
        (
            OPENAI,
            400,
            {"error": {"message": "This model's maximum context length is 8192"}},
            "context_length_exceeded",
        ),
        (OPENAI, 400, {"error": {"message": "x", "code": "content_filter"}}, "content_filter"),
        (OPENAI, 400, {"error": {"message": "bad", "type": "invalid_request_error"}}, "invalid_request"),
        (OPENAI, 401, {"error": "bad key"}, "authentication_failed"),
        (OPENAI, 429, [{"error": {"message": "slow down"}}], "rate_limited"),
        (OPENAI, 418, None, "unknown"),
        (
            ANTHROPIC,
            400,
            {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}},
            "context_length_exceeded",
        ),
        (
            ANTHROPIC,
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
            "provider_unavailable",
        ),
        (
            GEMINI,
            400,
            {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}},
            "authentication_failed",
        ),
        (
            GEMINI,
            503,
            {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}},
            "provider_unavailable",
        ),
    ],
)
def test_http_error_reason(dialect: Any, status: int, body: Any, reason: str) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    error = http_error(dialect, status, raw, {"Retry-After": "2", "x-request-id": "req_9"})
    assert (error.reason, error.status, error.provider) == (reason, status, dialect.provider)
    assert error.retry_after_ms == 2000 and error.request_id == "req_9"
    assert error.message.startswith(f"{dialect.label} HTTP {status}")


def test_redirect_is_not_followed() -> None:
    error = http_error(OPENAI, 302, b"", {"Location": "https://elsewhere.example"})
    assert error.reason == "unknown" and error.message == "OpenAI HTTP 302: redirect not followed"


def test_in_band_errors() -> None:
    overloaded = in_band_error(ANTHROPIC, ErrorBody(message="Overloaded", type="overloaded_error"))
    assert overloaded.reason == "provider_unavailable" and overloaded.status is None
    assert overloaded.metadata == {"error_type": "overloaded_error", "in_stream": True}
    limited = in_band_error(OPENAI, ErrorBody(message="Rate limit reached", code="rate_limit_exceeded"))
    assert (
        limited.reason == "rate_limited" and limited.message == "OpenAI error in stream: Rate limit reached"
    )
    unnamed = in_band_error(GEMINI, ErrorBody(), default="invalid_request")
    assert unnamed.reason == "invalid_request" and unnamed.message == "Gemini error in stream: error event"


def test_classification_order() -> None:
    """A type naming a specific reason wins over markers, markers over the status reason."""
    body = ErrorBody(message="context window exceeded", type="content_filter")
    assert classify(OPENAI, "invalid_request", body, 400) == "content_filter"
    assert classify(OPENAI, "invalid_request", ErrorBody(message="context window exceeded"), 400) == (
        "context_length_exceeded"
    )
    # markers only refine the statuses that can carry them
    assert classify(OPENAI, "provider_unavailable", ErrorBody(message="context length"), 500) == (
        "provider_unavailable"
    )
