"""A chat's ``execute_tool`` spans: one per tool run, from its start to its outcome."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rx_allm._redact import redact

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

    from rx_allm.conversation import ToolOutcome
    from rx_allm.models import ToolCall
    from rx_allm.orchestration.tools import FunctionTool


class ToolSpans:
    """The open ``execute_tool`` spans of one chat subscription, children of ``context``'s span.

    A span starts when the run starts and ends with the run's outcome; an error outcome
    (``unknown_tool``, ``invalid_arguments``, ``tool_exception``, ``tool_timeout``) sets
    ``error.type`` to its reason and the ERROR status. Arguments and results (and an error's
    message) are recorded only with ``capture_content``, redacted like every message.
    """

    def __init__(self, tracer: Tracer, context: Context, capture_content: bool) -> None:
        self.tracer = tracer
        self.context = context
        self.capture_content = capture_content
        self.lock = threading.Lock()
        self.open: set[Span] | None = set()  # None once closed: later runs get no span

    def start(self, call: ToolCall, tool: FunctionTool | None) -> Callable[[ToolOutcome], None]:
        """Start ``call``'s span; the returned function ends it with the outcome."""
        from opentelemetry.trace import SpanKind

        attributes = start_attributes(call, tool, self.capture_content)
        span = self.tracer.start_span(
            f"execute_tool {call.name}", context=self.context, kind=SpanKind.INTERNAL, attributes=attributes
        )
        with self.lock:
            if self.open is not None:
                self.open.add(span)
                return lambda outcome: self._end(span, outcome)
        span.end()  # the chat ended meanwhile
        return _ignore

    def _end(self, span: Span, outcome: ToolOutcome) -> None:
        from opentelemetry.trace import Status, StatusCode

        with self.lock:
            if self.open is None or span not in self.open:
                return
            self.open.discard(span)
        span.set_attributes(outcome_attributes(outcome, self.capture_content))
        if outcome.is_error:
            message = outcome.result.get("message") if isinstance(outcome.result, dict) else None
            detail = message if self.capture_content and isinstance(message, str) else None
            span.set_status(Status(StatusCode.ERROR, detail))
        span.end()

    def close(self, error_type: str) -> None:
        """End the spans of runs still going (the chat ended first) with ``error.type``."""
        with self.lock:
            spans, self.open = self.open or set(), None
        for span in spans:
            span.set_attribute("error.type", error_type)
            span.end()


def _ignore(_outcome: ToolOutcome) -> None:
    return None


def start_attributes(call: ToolCall, tool: FunctionTool | None, capture_content: bool) -> dict[str, Any]:
    """The attributes known as the run starts (the arguments only on opt-in)."""
    out: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.type": "function",
    }
    if call.id:
        out["gen_ai.tool.call.id"] = call.id
    if tool is not None and tool.spec.description:
        out["gen_ai.tool.description"] = tool.spec.description
    if capture_content:
        out["gen_ai.tool.call.arguments"] = _json(call.arguments)
    return out


def outcome_attributes(outcome: ToolOutcome, capture_content: bool) -> dict[str, Any]:
    """The attributes of the outcome: its kind, ``error.type``, the result only on opt-in."""
    out: dict[str, Any] = {"rx_allm.tool.outcome": outcome.kind}
    if outcome.is_error:
        out["error.type"] = outcome.reason or "tool_error"
    elif capture_content and outcome.result is not None:
        out["gen_ai.tool.call.result"] = _json(outcome.result)
    return out


def _json(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return redact(text)
