"""Folding a stream of events into a :class:`~rx_allm.models.Response`: :class:`StreamCollector`.

The fold never raises for a failed stream: the terminal ``on_error`` becomes
``finish_reason="error"`` with the error on ``Response.error`` and every text
and tool fragment received before it kept. :func:`~rx_allm.runner.generate` and
:func:`~rx_allm.runner.collect` subscribe and fold with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
from pydantic import BaseModel

from rx_allm.errors import AdapterError, StreamError, ValidationError
from rx_allm.events import (
    REASONING_COMPLETED,
    REFUSAL_DELTA,
    Event,
    MessageCompleted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.models import FinishReason, Message, Reasoning, Response, ToolCall, Usage
from rx_allm.structured import output_error

_KEPT_KINDS = frozenset({REASONING_COMPLETED, REFUSAL_DELTA})


class StreamCollector:
    """Accumulates events; ``to_response()`` gives the Response at any point.

    Fold rules: text deltas append to the current block and ``text_completed``
    replaces that block's text (so several blocks concatenate); tool calls are
    kept in first-seen order (started puts, deltas append raw arguments,
    completed replaces); a usage ``raw_chunk`` replaces the usage;
    ``message_completed`` sets the message, a non-None finish reason and merges
    its metadata, and makes the Response complete (``ok``); an error sets
    ``finish_reason="error"``. Without either the Response is *unfinished*
    (``status == "unfinished"``, ``ok`` False); its message keeps the text, the tool calls,
    the completed reasoning blocks and the refusal received so far (raw chunks: they reach
    a collector when the stream was built with ``include_raw_chunks=True``). With an
    ``output_type`` (a pydantic class), the completed message's text is
    validated into ``Response.output`` (a failure becomes
    ``ValidationError("invalid_output")`` in ``Response.error``).
    """

    __slots__ = (
        "_blocks",
        "_calls",
        "_current",
        "_error",
        "_finish",
        "_message",
        "_metadata",
        "_reasoning",
        "_refusal",
        "_usage",
        "output_type",
        "request_id",
    )

    def __init__(self, request_id: str | None = None, output_type: type[BaseModel] | None = None) -> None:
        self._blocks: list[str] = []
        self._current: list[str] = []
        self._calls: dict[str, ToolCall] = {}
        self._message: Message | None = None
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._error: AdapterError | StreamError | None = None
        self._metadata: dict[str, Any] = {}
        self._reasoning: list[Reasoning] = []  # completed reasoning blocks, for an unfinished fold
        self._refusal: str | None = None
        self.request_id = request_id
        self.output_type = output_type

    def apply(self, event: Event) -> None:
        """Fold one event."""
        fold = _FOLDS.get(event.type)
        if fold is not None:
            fold(self, event)

    def _text_delta(self, event: TextDelta) -> None:
        self._current.append(event.delta)

    def _text_completed(self, event: TextCompleted) -> None:
        self._blocks.append(event.text)
        self._current.clear()

    def _tool_call_started(self, event: ToolCallStarted) -> None:
        if event.id not in self._calls:
            self._calls[event.id] = ToolCall(id=event.id, name=event.name)

    def _tool_call_delta(self, event: ToolCallDelta) -> None:
        call = self._calls.get(event.id) or ToolCall(id=event.id)
        raw = call.raw_arguments + event.arguments_delta
        self._calls[call.id] = call.model_copy(update={"raw_arguments": raw})

    def _tool_call_completed(self, event: ToolCallCompleted) -> None:
        self._calls[event.id] = event.to_call()

    def _raw_chunk(self, event: RawChunk) -> None:
        if event.kind == "usage" and isinstance(event.data, Usage):
            self._usage = event.data
        elif event.kind in _KEPT_KINDS:
            self._keep(event)

    def _message_completed(self, event: MessageCompleted) -> None:
        self._message = event.message
        if event.finish_reason is not None:
            self._finish = event.finish_reason
        self._metadata.update(event.metadata)

    def _keep(self, event: RawChunk) -> None:
        """A completed reasoning block or a refusal fragment, kept for an unfinished fold."""
        data = event.data if isinstance(event.data, dict) else {}
        if event.kind == REASONING_COMPLETED and isinstance(data.get("reasoning"), dict):
            self._reasoning.append(Reasoning.model_validate(data["reasoning"]))
        elif event.kind == REFUSAL_DELTA and isinstance(data.get("delta"), str):
            self._refusal = (self._refusal or "") + data["delta"]

    def fail(self, error: Exception) -> None:
        """Fold the terminal error (anything not typed is wrapped as ``StreamError("unknown")``)."""
        if not isinstance(error, (AdapterError, StreamError)):
            error = StreamError.wrap(error)
        self._error = error
        self._finish = "error"

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._blocks) + "".join(self._current)

    def to_response(self) -> Response:
        """The Response for everything folded so far."""
        message = self._message
        text = message.text if message is not None and message.text else self.text
        calls = list(self._calls.values())
        if message is None:
            message = Message(
                role="assistant",
                content=text,
                tool_calls=calls,
                reasoning=self._reasoning,
                refusal=self._refusal,
            )
        output, error = self._output(text)
        # Validating is cheaper than ``model_construct`` here: model instances pass through as they are.
        return Response(
            message=message,
            output_text=text,
            tool_calls=calls,
            completed=self._message is not None,
            finish_reason=self._finish,
            usage=self._usage or Usage(),
            error=error,
            metadata=dict(self._metadata),
            request_id=self.request_id,
            output=output,
        )

    def _output(self, text: str) -> tuple[Any, AdapterError | StreamError | ValidationError | None]:
        """``output_type`` validated from the completed message's text, or the error that prevents it."""
        model = self.output_type
        if model is None or self._error is not None or self._message is None:
            return None, self._error
        try:
            return model.model_validate_json(text), None
        except pydantic.ValidationError as exc:
            return None, output_error(exc, model.__name__)


#: The fold of each event type the collector reads (the others pass it by).
_FOLDS: dict[str, Callable[[StreamCollector, Any], None]] = {
    "text_delta": StreamCollector._text_delta,
    "text_completed": StreamCollector._text_completed,
    "tool_call_started": StreamCollector._tool_call_started,
    "tool_call_delta": StreamCollector._tool_call_delta,
    "tool_call_completed": StreamCollector._tool_call_completed,
    "raw_chunk": StreamCollector._raw_chunk,
    "message_completed": StreamCollector._message_completed,
}

__all__ = ["StreamCollector"]
