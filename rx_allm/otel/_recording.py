"""One streaming call's span and measurements, fed by the events it delivers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rx_allm._redact import redact
from rx_allm.errors import RxAllmError
from rx_allm.events import (
    META_MODEL,
    META_RESPONSE_ID,
    REASONING_DELTA,
    REFUSAL_DELTA,
    Event,
    MessageCompleted,
    RawChunk,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.models import Request, Usage
from rx_allm.otel._messages import input_attributes, output_attribute

if TYPE_CHECKING:
    from opentelemetry.metrics import Histogram
    from opentelemetry.trace import Span, Tracer

#: ``gen_ai.provider.name`` per adapter name (a name not listed is used as is).
PROVIDER_NAMES = {"gemini": "gcp.gemini"}
#: ``gen_ai.operation.name`` per adapter name (else ``chat``).
OPERATION_NAMES = {"gemini": "generate_content"}
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_CHUNK_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_CHUNK_KINDS = frozenset({REASONING_DELTA, REFUSAL_DELTA})  # raw chunks that are output
_USAGE_ATTRIBUTES = (
    ("input_tokens", "gen_ai.usage.input_tokens"),
    ("output_tokens", "gen_ai.usage.output_tokens"),
    ("cached_input_tokens", "gen_ai.usage.cache_read.input_tokens"),
    ("cache_write_input_tokens", "gen_ai.usage.cache_creation.input_tokens"),
    ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
)


class Telemetry:
    """A tracer and the four GenAI client histograms, created once per provider pair."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry import metrics, trace

        from rx_allm import __version__

        self.tracer: Tracer = trace.get_tracer("rx_allm", __version__, tracer_provider)
        meter = metrics.get_meter("rx_allm", __version__, meter_provider)
        self.duration: Histogram = meter.create_histogram(
            "gen_ai.client.operation.duration", "s", "GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )  # fmt: skip
        self.tokens: Histogram = meter.create_histogram(
            "gen_ai.client.token.usage", "{token}", "Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )  # fmt: skip
        self.first_chunk: Histogram = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", "s", "Time to receive the first chunk.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )  # fmt: skip
        self.per_chunk: Histogram = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk", "s", "Time per output chunk after the first.",
            explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS,
        )  # fmt: skip


@dataclass(frozen=True)
class CallInfo:
    """What is known of a call before it starts: who is asked, for what, what may be recorded."""

    provider: str | None = None
    model: str | None = None
    request: Request | None = None
    base_url: str | None = None
    capture_content: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def attributes(self) -> dict[str, Any]:
        """The attributes shared by the span and every measurement."""
        provider = self.provider or "unknown"
        out: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION_NAMES.get(provider, "chat"),
            "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
        }
        if self.model:
            out["gen_ai.request.model"] = self.model
        if self.base_url:
            url = urlsplit(self.base_url)
            if url.hostname:
                out["server.address"] = url.hostname
                out["server.port"] = url.port or (443 if url.scheme == "https" else 80)
        return out

    def span_attributes(self) -> dict[str, Any]:
        """The attributes set when the span starts (request parameters, content on opt-in)."""
        out = {**self.attributes(), "gen_ai.request.stream": True, **self.extra}
        request = self.request
        if request is not None:
            if request.max_tokens is not None:
                out["gen_ai.request.max_tokens"] = request.max_tokens
            if request.temperature is not None:
                out["gen_ai.request.temperature"] = request.temperature
            if request.response_format is not None:
                out["gen_ai.output.type"] = "json"
            if self.capture_content:
                out.update(input_attributes(request.messages))
        return out


class Recording:
    """One subscription: its span (started now), chunk times, usage and the final message."""

    def __init__(self, telemetry: Telemetry, call: CallInfo) -> None:
        from opentelemetry.trace import SpanKind

        self.telemetry = telemetry
        self.call = call
        self.common = call.attributes()
        name = f"{self.common['gen_ai.operation.name']} {call.model or ''}".strip()
        self.span: Span = telemetry.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=call.span_attributes()
        )
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.last_chunk: float | None = None
        self.usage: Usage | None = None
        self.final: MessageCompleted | None = None
        self.ended = False

    def on_event(self, event: Event) -> None:
        """Note one delivered event (chunk times, usage, the final message)."""
        if isinstance(event, (TextDelta, ToolCallDelta, ToolCallStarted)) or (
            isinstance(event, RawChunk) and event.kind in _CHUNK_KINDS
        ):
            now = time.monotonic()
            if self.last_chunk is None:
                self.telemetry.first_chunk.record(now - self.start, self.common)
                self.span.set_attribute("gen_ai.response.time_to_first_chunk", now - self.start)
            else:
                self.telemetry.per_chunk.record(now - self.last_chunk, self.common)
            self.last_chunk = now
        elif isinstance(event, RawChunk) and isinstance(event.data, Usage):
            self.usage = event.data
        elif isinstance(event, MessageCompleted):
            self.final = event

    def end(self, error: BaseException | None = None, error_type: str | None = None) -> None:
        """End the span and record the duration and token usage (once; later calls do nothing)."""
        with self.lock:
            if self.ended:
                return
            self.ended = True
        from opentelemetry.trace import Status, StatusCode

        attributes = {**self.common, **self._response_attributes()}
        if error is not None:
            error_type = error.reason if isinstance(error, RxAllmError) else type(error).__qualname__
            self.span.set_status(Status(StatusCode.ERROR, redact(str(error))))
        if error_type is not None:
            attributes["error.type"] = error_type
        span_attributes = {**attributes, **usage_attributes(self.usage)}
        if self.call.capture_content and self.final is not None:
            span_attributes["gen_ai.output.messages"] = output_attribute(
                self.final.message, self.final.finish_reason
            )
        self.span.set_attributes(span_attributes)
        self.span.end()
        self.telemetry.duration.record(time.monotonic() - self.start, attributes)
        for kind, count in (
            ("input", self._tokens("input_tokens")),
            ("output", self._tokens("output_tokens")),
        ):
            if count is not None:
                self.telemetry.tokens.record(count, {**attributes, "gen_ai.token.type": kind})

    def _tokens(self, name: str) -> int | None:
        value = getattr(self.usage, name, None)
        return value if isinstance(value, int) else None

    def _response_attributes(self) -> dict[str, Any]:
        final = self.final
        if final is None:
            return {}
        out: dict[str, Any] = {"gen_ai.response.finish_reasons": [final.finish_reason or "other"]}
        metadata = final.metadata
        for key, name in ((META_MODEL, "gen_ai.response.model"), (META_RESPONSE_ID, "gen_ai.response.id")):
            if isinstance(metadata.get(key), str):
                out[name] = metadata[key]
        return out


def usage_attributes(usage: Usage | None) -> dict[str, int]:
    """``gen_ai.usage.*`` for the counts the provider reported (an unreported count is left out)."""
    if usage is None:
        return {}
    counts = ((name, getattr(usage, field_name)) for field_name, name in _USAGE_ATTRIBUTES)
    return {name: value for name, value in counts if isinstance(value, int)}
