"""Turning an HTTP error response into a typed :class:`~rx_allm.errors.AdapterError`.

The status table is shared by every provider; each provider supplies how to
read its error body (message and type) and which markers mean "context length
exceeded" or "content filter".
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rx_allm.errors import AdapterError

#: Status → reason; anything else is ``unknown``.
STATUS_REASONS: dict[int, str] = {
    400: "invalid_request",
    401: "authentication_failed",
    403: "authentication_failed",
    404: "invalid_request",
    408: "timeout",
    409: "invalid_request",
    413: "invalid_request",
    422: "invalid_request",
    429: "rate_limited",
    500: "provider_unavailable",
    502: "provider_unavailable",
    503: "provider_unavailable",
    504: "provider_unavailable",
    529: "provider_unavailable",
}

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id", "x-amzn-requestid", "cf-ray")
_MAX_RETRY_AFTER_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What a provider's error body says."""

    message: str | None = None
    type: str | None = None
    code: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorDialect:
    """How one provider writes errors."""

    provider: str
    label: str  # "OpenAI", "Anthropic", ...
    read_body: Callable[[Any], ErrorBody]
    context_markers: tuple[str, ...] = ()
    content_filter_markers: tuple[str, ...] = ()
    auth_markers: tuple[str, ...] = ()  # e.g. Gemini answers a bad key with HTTP 400
    type_reasons: Mapping[str, str] = field(default_factory=dict)  # provider error type → reason


def error_body_object(decoded: Any, *, in_list: bool = True) -> dict[str, Any]:
    """A decoded error body as an object (``{}`` when it is none); ``in_list``: the first item of a list,
    as some gateways wrap the body."""
    if in_list and isinstance(decoded, list) and decoded:
        decoded = decoded[0]
    return decoded if isinstance(decoded, dict) else {}


def error_object(decoded: Any, *, in_list: bool = True) -> dict[str, Any] | None:
    """The ``{...}`` of an ``{"error": {...}}`` body (see :func:`error_body_object`), ``None`` when absent."""
    error = error_body_object(decoded, in_list=in_list).get("error")
    return error if isinstance(error, dict) else None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> int | None:
    """Milliseconds from ``retry-after-ms``, or ``Retry-After`` seconds / HTTP-date; None if absent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return _clamp(float(raw_ms))
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return _clamp(float(raw) * 1000)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return _clamp((when.timestamp() - now) * 1000)


def _clamp(ms: float) -> int | None:
    if ms != ms:  # NaN
        return None
    return int(min(max(ms, 0.0), _MAX_RETRY_AFTER_MS))


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The provider's request id from the response headers, if any."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in REQUEST_ID_HEADERS:
        if lowered.get(name):
            return lowered[name]
    return None


def decode_body(body: bytes) -> Any:
    """The body as JSON if it is JSON, else its text (``None`` when empty)."""
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def http_error(dialect: ErrorDialect, status: int, body: bytes, headers: Mapping[str, str]) -> AdapterError:
    """Classify an HTTP error response (status ≥ 300)."""
    decoded = decode_body(body)
    info = dialect.read_body(decoded) if isinstance(decoded, (dict, list)) else ErrorBody()
    reason = classify(dialect, STATUS_REASONS.get(status, "unknown"), info, status)
    if 300 <= status < 400:
        message = f"{dialect.label} HTTP {status}: redirect not followed"
    else:
        message = (
            f"{dialect.label} HTTP {status}: {info.message}"
            if info.message
            else f"{dialect.label} HTTP {status}"
        )
    metadata = {k: v for k, v in (("error_type", info.type), ("error_code", info.code)) if v} | info.metadata
    return AdapterError(
        reason,
        message,
        provider=dialect.provider,
        status=status,
        retry_after_ms=parse_retry_after(headers),
        request_id=request_id_of(headers),
        metadata=metadata,
    )


def in_band_error(
    dialect: ErrorDialect, info: ErrorBody, default: str = "provider_unavailable"
) -> AdapterError:
    """Classify an error event that arrived inside a 200 stream."""
    reason = classify(dialect, default, info, None)
    text = info.message or info.type or "error event"
    metadata = {k: v for k, v in (("error_type", info.type), ("error_code", info.code)) if v} | info.metadata
    metadata["in_stream"] = True
    return AdapterError(
        reason, f"{dialect.label} error in stream: {text}", provider=dialect.provider, metadata=metadata
    )


def classify(dialect: ErrorDialect, reason: str, info: ErrorBody, status: int | None) -> str:
    """Refine a status reason with the provider's error type/code and message markers.

    Order: a type or code that names a specific reason (context length, content
    filter), then message markers, then — for in-stream errors, which have no status —
    the provider's generic error type, else the status reason.
    """
    mapped = [
        dialect.type_reasons[key] for key in (info.code, info.type) if key and key in dialect.type_reasons
    ]
    for candidate in mapped:
        if candidate in _SPECIFIC:
            return candidate
    text = (info.message or "").lower()
    if status in (None, 400, 413) and _mentions(text, dialect.context_markers):
        return "context_length_exceeded"
    if status in (None, 400) and _mentions(text, dialect.content_filter_markers):
        return "content_filter"
    if status in (None, 400) and _mentions(text, dialect.auth_markers):
        return "authentication_failed"
    if status is None and mapped:
        return mapped[0]
    return reason


_SPECIFIC = frozenset({"context_length_exceeded", "content_filter"})


def _mentions(text: str, markers: tuple[str, ...]) -> bool:
    return any(marker in text for marker in markers)


__all__ = [
    "ErrorBody",
    "ErrorDialect",
    "REQUEST_ID_HEADERS",
    "STATUS_REASONS",
    "classify",
    "decode_body",
    "error_body_object",
    "error_object",
    "http_error",
    "in_band_error",
    "parse_retry_after",
    "request_id_of",
]
