"""The event vocabulary: immutable pydantic models discriminated by ``type``.

Payload fields are open for additions; adding a new ``type`` is a breaking change.
Eight stream events come from adapters; seven orchestration events come from the chat
layer (:mod:`rx_allm.chat`). ``parse_event`` turns the JSON form (``event.model_dump(mode="json")``) back into
the typed event.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from rx_allm.conversation import ChatResult, Thread, ToolOutcome
from rx_allm.models import FinishReason, Message, Response, ToolCall, Usage


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class MessageStarted(_Event):
    """First event of every adapter stream: an empty assistant message."""

    type: Literal["message_started"] = "message_started"
    message: Message = Field(default_factory=lambda: Message(role="assistant"))
    metadata: dict[str, Any] = Field(default_factory=dict)


class TextDelta(_Event):
    """A non-empty fragment of the reply's text."""

    type: Literal["text_delta"] = "text_delta"
    id: str | None = None
    delta: str


class TextCompleted(_Event):
    """The full text of one text block (Fake, Anthropic)."""

    type: Literal["text_completed"] = "text_completed"
    id: str | None = None
    text: str


class ToolCallStarted(_Event):
    """A tool call opened."""

    type: Literal["tool_call_started"] = "tool_call_started"
    id: str
    name: str


class ToolCallDelta(_Event):
    """A non-empty fragment of a tool call's JSON arguments."""

    type: Literal["tool_call_delta"] = "tool_call_delta"
    id: str
    arguments_delta: str


class ToolCallCompleted(_Event):
    """The assembled call; ``arguments`` is ``{}`` when the JSON is not an object."""

    type: Literal["tool_call_completed"] = "tool_call_completed"
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_call(cls, call: ToolCall) -> ToolCallCompleted:
        """The event announcing ``call`` (the two share their fields)."""
        return cls.model_validate(call, from_attributes=True)

    def to_call(self) -> ToolCall:
        """The :class:`~rx_allm.models.ToolCall` this event completes."""
        return ToolCall.model_validate(self, from_attributes=True)


class RawChunk(_Event):
    """Provider extras; ``kind="usage"`` carries a :class:`~rx_allm.models.Usage`."""

    type: Literal["raw_chunk"] = "raw_chunk"
    kind: str
    data: Any = None

    @model_validator(mode="after")
    def _usage_from_dict(self) -> RawChunk:
        if self.kind == "usage" and isinstance(self.data, dict):
            object.__setattr__(self, "data", Usage.model_validate(self.data))
        return self


class MessageCompleted(_Event):
    """Exactly once, last, on success: the final assistant message with its tool calls."""

    type: Literal["message_completed"] = "message_completed"
    message: Message
    finish_reason: FinishReason | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


# -- orchestration events (the chat layer, rx_allm.chat) -----------------------------------
class ToolExecutionStarted(_Event):
    """A tool call of the model is executed (emitted with its two companions)."""

    type: Literal["tool_execution_started"] = "tool_execution_started"
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolExecutionCompleted(_Event):
    """A tool call ended: its JSON-ready ``result`` (an error description when ``is_error``)."""

    type: Literal["tool_execution_completed"] = "tool_execution_completed"
    id: str
    name: str
    result: Any = None
    is_error: bool = False


class ToolResultEncoded(_Event):
    """The tool message ``content`` sent back to the model for call ``id``."""

    type: Literal["tool_result_encoded"] = "tool_result_encoded"
    id: str
    content: str


class AskUserRequested(_Event):
    """A tool raised ``AskUser``: the chat halts awaiting the user's answer."""

    type: Literal["ask_user_requested"] = "ask_user_requested"
    tool_call_id: str
    tool_name: str
    question: str
    opts: dict[str, Any] = Field(default_factory=dict)


class ToolHalt(_Event):
    """A tool returned ``Halt(reason, result)``: the chat halts with ``reason``."""

    type: Literal["tool_halt"] = "tool_halt"
    tool_call_id: str
    reason: str
    result: Any = None


class StepCompleted(_Event):
    """Exactly once per step: the step's response and the thread after it."""

    type: Literal["step_completed"] = "step_completed"
    response: Response
    thread: Thread
    index: int = 0
    tool_outcomes: list[ToolOutcome] = Field(default_factory=list)


class ChatCompleted(_Event):
    """Exactly once, last, when a chat ends without an error."""

    type: Literal["chat_completed"] = "chat_completed"
    result: ChatResult


Event = Annotated[
    MessageStarted
    | TextDelta
    | TextCompleted
    | ToolCallStarted
    | ToolCallDelta
    | ToolCallCompleted
    | RawChunk
    | MessageCompleted
    | ToolExecutionStarted
    | ToolExecutionCompleted
    | ToolResultEncoded
    | AskUserRequested
    | ToolHalt
    | StepCompleted
    | ChatCompleted,
    Field(discriminator="type"),
]

#: Tags of the orchestration events (the chat layer); never emitted by adapters or ``stream_generate``.
RESERVED_TYPES: frozenset[str] = frozenset(
    {
        "tool_execution_started",
        "tool_execution_completed",
        "tool_result_encoded",
        "ask_user_requested",
        "tool_halt",
        "step_completed",
        "chat_completed",
    }
)

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: dict[str, Any] | str | bytes) -> Event:
    """Parse an event from its dict or JSON form."""
    if isinstance(data, (str, bytes)):
        return _EVENT_ADAPTER.validate_json(data)
    return _EVENT_ADAPTER.validate_python(data)


def usage_chunk(usage: Usage) -> RawChunk:
    """The usage event adapters emit (always passes the runner's filters)."""
    return RawChunk(kind="usage", data=usage)


__all__ = [
    "AskUserRequested",
    "ChatCompleted",
    "Event",
    "MessageCompleted",
    "MessageStarted",
    "RESERVED_TYPES",
    "RawChunk",
    "StepCompleted",
    "TextCompleted",
    "TextDelta",
    "ToolCallCompleted",
    "ToolCallDelta",
    "ToolCallStarted",
    "ToolExecutionCompleted",
    "ToolExecutionStarted",
    "ToolHalt",
    "ToolResultEncoded",
    "parse_event",
    "usage_chunk",
]
