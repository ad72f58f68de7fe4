"""A chat's span and one child span per step, fed by the chat's events."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rx_allm._redact import redact
from rx_allm.errors import RxAllmError
from rx_allm.events import ChatCompleted, Event, StepCompleted
from rx_allm.models import Response
from rx_allm.otel._recording import PROVIDER_NAMES, usage_attributes
from rx_allm.otel._tools import ToolSpans

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

    from rx_allm.conversation import ToolOutcome
    from rx_allm.models import ToolCall
    from rx_allm.orchestration.tools import FunctionTool


class ChatRecording:
    """One chat subscription: an ``invoke_agent`` span, and a ``step {n}`` span per step under it.

    A step span runs from the step's first event to its ``step_completed``, so it covers
    the model's answer and the tools it ran. Bound to the chat (as its
    :class:`~rx_allm.orchestration.loop.ChatTrace`), it also makes the chat span the parent
    of each step's model request and gives each tool run an ``execute_tool`` span.
    """

    def __init__(self, tracer: Tracer, attributes: dict[str, Any], capture_content: bool = False) -> None:
        from opentelemetry import trace

        self.tracer = tracer
        name = f"invoke_agent {attributes.get('gen_ai.agent.name', '')}".strip()
        self.span: Span = tracer.start_span(name, kind=trace.SpanKind.INTERNAL, attributes=attributes)
        self.context: Context = trace.set_span_in_context(self.span)
        self.tools = ToolSpans(tracer, self.context, capture_content)
        self.lock = threading.Lock()
        self.step: Span | None = None
        self.steps = 0
        self.ended = False

    def on_event(self, event: Event) -> None:
        """Open the current step's span on its first event; close it at ``step_completed``."""
        if self.step is None and not isinstance(event, ChatCompleted):
            self.step = self.tracer.start_span(f"step {self.steps}", context=self.context)
        if isinstance(event, StepCompleted) and self.step is not None:
            self.step.set_attributes(step_attributes(event.index, event.response))
            self.step.end()
            self.step, self.steps = None, self.steps + 1
        elif isinstance(event, ChatCompleted):
            result = event.result
            self.span.set_attributes(
                {"rx_allm.chat.halted_reason": result.halted_reason, "rx_allm.chat.steps": len(result.steps)}
            )
            self.span.set_attributes(usage_attributes(result.usage))

    def subscribing(self) -> Callable[[], None]:
        """Make the chat span current while a step's request subscribes (its span's parent)."""
        from opentelemetry import context

        token = context.attach(self.context)
        return lambda: context.detach(token)

    def tool_started(self, call: ToolCall, tool: FunctionTool | None) -> Callable[[ToolOutcome], None]:
        """Start the run's ``execute_tool`` span; the returned function ends it with the outcome."""
        return self.tools.start(call, tool)

    def end(self, error: BaseException | None = None, error_type: str | None = None) -> None:
        """End the open tool and step spans and the chat span (once)."""
        from opentelemetry.trace import Status, StatusCode

        with self.lock:
            if self.ended:
                return
            self.ended = True
        if error is not None:
            error_type = error.reason if isinstance(error, RxAllmError) else type(error).__qualname__
            self.span.set_status(Status(StatusCode.ERROR, redact(str(error))))
        self.tools.close(error_type or "cancelled")
        for span in (self.step, self.span):
            if span is not None:
                if error_type is not None:
                    span.set_attribute("error.type", error_type)
                span.end()


def step_attributes(index: int, response: Response) -> dict[str, Any]:
    """The attributes of a finished step: its finish reason, usage and the tools it called."""
    out: dict[str, Any] = {"rx_allm.step.index": index, **usage_attributes(response.usage)}
    if response.finish_reason is not None:
        out["gen_ai.response.finish_reasons"] = [response.finish_reason]
    if response.tool_calls:
        out["rx_allm.step.tool_calls"] = [call.name for call in response.tool_calls]
    return out


def chat_attributes(name: str | None, provider: str | None, model: str | None) -> dict[str, Any]:
    """The ``invoke_agent`` span's attributes."""
    out: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent"}
    if provider:
        out["gen_ai.provider.name"] = PROVIDER_NAMES.get(provider, provider)
    if model:
        out["gen_ai.request.model"] = model
    if name:
        out["gen_ai.agent.name"] = name
    return out
