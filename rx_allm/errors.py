"""The closed, typed error taxonomy of rx_allm.

Every error is an exception *and* plain data: ``to_dict()`` / ``from_dict()``
round-trip through JSON, pydantic models can hold them as fields, and each
class accepts only the reasons of its closed set (an unknown reason raises
``ValueError``). Messages pass through :func:`rx_allm._redact.redact` so an API
key never reaches a message, a repr or a serialized error.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from rx_allm._redact import redact

AdapterReason = Literal[
    "authentication_failed",
    "rate_limited",
    "invalid_request",
    "content_filter",
    "context_length_exceeded",
    "provider_unavailable",
    "timeout",
    "network_error",
    "malformed_response",
    "unsupported_feature",
    "no_scripted_response",
    "unknown",
]
StreamReason = Literal["cancelled", "timeout", "malformed_event", "adapter_error", "truncated", "unknown"]
ValidationReason = Literal["invalid_request", "invalid_message", "invalid_tool", "invalid_output"]
EngineReason = Literal["missing_adapter", "missing_stream_adapter", "missing_model", "invalid_engine"]


class BlockingCallError(RuntimeError):
    """A blocking call (``events.run()``, ``generate_sync``) on a thread that runs an event loop.

    Waiting there for a stream that needs that very loop would deadlock (on the library's
    background loop thread: every synchronous stream of the process), so the call refuses.
    """


class RxAllmError(Exception):
    """Base of every rx_allm error: a reason from a closed set, a message, data."""

    kind: ClassVar[str] = "error"
    reasons: ClassVar[frozenset[str]] = frozenset()
    _fields: ClassVar[tuple[str, ...]] = ()

    reason: str
    message: str
    provider: str | None
    cause: Any
    metadata: dict[str, Any]

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        provider: str | None = None,
        cause: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if reason not in self.reasons:
            allowed = ", ".join(sorted(self.reasons))
            raise ValueError(f"unknown {type(self).__name__} reason {reason!r}; expected one of: {allowed}")
        self.reason = reason
        default = f"{self.kind} error ({provider}): {reason}" if provider else f"{self.kind} error: {reason}"
        self.message = redact(message) if message else default
        self.provider = provider
        self.cause = cause
        self.metadata = _json_safe(dict(metadata or {}))  # provider bodies may echo a key
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        parts = [f"reason={self.reason!r}", f"message={self.message!r}"]
        for name in self._fields:
            value = getattr(self, name)
            if value is not None and name not in ("reason", "message"):
                parts.append(f"{name}={value!r}")
        return redact(f"{type(self).__name__}({', '.join(parts)})")  # the cause's repr is not redacted

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = Exception.__hash__

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.to_dict(),))

    # -- data form ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``type`` names the class, ``cause`` is made printable."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for name in self._fields:
            value = getattr(self, name)
            out[name] = _plain_cause(value) if name == "cause" else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RxAllmError:
        """Rebuild an error (of the class named by ``data["type"]``) from ``to_dict()``."""
        data = dict(data)
        target = _ERROR_TYPES.get(str(data.pop("type", cls.__name__)), cls)
        if isinstance(data.get("cause"), dict) and data["cause"].get("type") in _ERROR_TYPES:
            data["cause"] = RxAllmError.from_dict(data["cause"])
        return target(**data)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> RxAllmError:
            if isinstance(value, cls):
                return value
            if isinstance(value, dict):
                return cls.from_dict(value)
            raise ValueError(f"expected {cls.__name__} or its dict form")  # lets a union try the next type

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda e: e.to_dict(), when_used="always"
            ),
        )


def _plain_cause(cause: Any) -> Any:
    if cause is None or isinstance(cause, (str, int, float, bool)):
        return redact(cause) if isinstance(cause, str) else cause
    if isinstance(cause, RxAllmError):
        return cause.to_dict()
    if isinstance(cause, BaseException):
        return redact(f"{type(cause).__name__}: {cause}")
    if isinstance(cause, (dict, list)):
        return _json_safe(cause)
    return redact(repr(cause))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return redact(repr(value))


class AdapterError(RxAllmError):
    """An HTTP-shaped failure: a status, a provider error body, a pre-flight refusal."""

    kind = "adapter"
    reasons = frozenset(get_args(AdapterReason))
    _fields = ("reason", "message", "provider", "status", "retry_after_ms", "request_id", "cause", "metadata")

    status: int | None
    retry_after_ms: int | None
    request_id: str | None

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        provider: str | None = None,
        status: int | None = None,
        retry_after_ms: int | None = None,
        request_id: str | None = None,
        cause: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.retry_after_ms = retry_after_ms
        self.request_id = request_id
        super().__init__(reason, message, provider=provider, cause=cause, metadata=metadata)

    @property
    def retryable(self) -> bool:
        """True for failures a caller may retry (rate limits, outages, timeouts, network)."""
        return self.reason in {"rate_limited", "provider_unavailable", "timeout", "network_error"}


class StreamError(RxAllmError):
    """A transport-shaped failure of an open stream (truncation, bad frame, ...)."""

    kind = "stream"
    reasons = frozenset(get_args(StreamReason))
    _fields = ("reason", "message", "provider", "event_index", "cause", "metadata")

    event_index: int | None

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        provider: str | None = None,
        event_index: int | None = None,
        cause: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.event_index = event_index
        super().__init__(reason, message, provider=provider, cause=cause, metadata=metadata)

    @classmethod
    def wrap(cls, error: BaseException, provider: str | None = None) -> StreamError:
        """An untyped failure as ``StreamError("unknown")``, the original kept as ``cause``."""
        return cls("unknown", f"unexpected {type(error).__name__}: {error}", provider=provider, cause=error)


class ValidationError(RxAllmError):
    """Bad input, with ``errors`` listing ``(field path, reason)``.

    A request refused before any I/O (``invalid_request``, ``invalid_message``,
    ``invalid_tool``), or a model's structured output that does not validate
    (``invalid_output``, see :func:`rx_allm.partial_output`).
    """

    kind = "validation"
    reasons = frozenset(get_args(ValidationReason))
    _fields = ("reason", "message", "errors", "cause", "metadata")

    errors: list[tuple[str, str]]

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        errors: list[tuple[str, str]] | list[list[str]] | None = None,
        provider: str | None = None,
        cause: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.errors = [(str(path), str(why)) for path, why in (errors or [])]
        if message is None:
            listed = "; ".join(f"{path}: {why}" for path, why in self.errors)
            message = f"validation failed: {reason} ({len(self.errors)} error(s))" + (
                f": {listed}" if listed else ""
            )
        super().__init__(reason, message, provider=provider, cause=cause, metadata=metadata)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["errors"] = [list(e) for e in self.errors]
        return out


class EngineError(RxAllmError):
    """The engine cannot serve the call (no adapter, no stream support, no model, bad config)."""

    kind = "engine"
    reasons = frozenset(get_args(EngineReason))
    _fields = ("reason", "message", "provider", "cause", "metadata")


_ERROR_TYPES: dict[str, type[RxAllmError]] = {
    c.__name__: c for c in (AdapterError, StreamError, ValidationError, EngineError)
}


def _rebuild(data: dict[str, Any]) -> RxAllmError:
    return RxAllmError.from_dict(data)


__all__ = [
    "AdapterError",
    "AdapterReason",
    "EngineError",
    "EngineReason",
    "RxAllmError",
    "StreamError",
    "StreamReason",
    "ValidationError",
    "ValidationReason",
]
