"""The event vocabulary: immutable pydantic models discriminated by ``type``.

Payload fields are open for additions; adding a new ``type`` is a breaking change.
Eight stream events come from adapters; seven orchestration events come from the chat
layer (:mod:`rx_allm.orchestration`). ``parse_event`` turns the JSON form
(``event.model_dump(mode="json")``) back into the typed event.

The metadata keys every adapter uses on ``message_started``/``message_completed``
(``META_*``), the ``ToolCall.metadata`` keys (:data:`THOUGHT_SIGNATURE`, :data:`ITEM_ID`)
and the ``raw_chunk`` kinds of the shared vocabulary (:data:`REASONING_DELTA`,
:data:`REASONING_COMPLETED`, :data:`REFUSAL_DELTA`) are constants here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from rx_allm.conversation import ChatResult, Thread, ToolOutcome
from rx_allm.models import FinishReason, Message, Reasoning, Response, ToolCall, Usage

# -- metadata keys (message_started / message_completed ``metadata``) -------------------
#: The adapter's name (``"openai"``, ``"anthropic"``, ``"gemini"``, ``"fake"``, ...): on both events.
META_PROVIDER = "provider"
#: The provider's id of the reply (Chat Completions ``id``, Responses ``resp_`` id, Anthropic
#: ``msg_`` id, Gemini ``responseId``): on both events once the provider sent it.
META_RESPONSE_ID = "response_id"
#: The model the provider says answered (its version string).
META_MODEL = "model"
#: The provider's own finish value, verbatim (``"stop"``, ``"completed"`` or an incomplete
#: reason, ``"end_turn"``, ``"STOP"``, ...): on ``message_completed`` whenever one was sent.
META_NATIVE_FINISH_REASON = "native_finish_reason"
#: Anthropic: the stop sequence that ended the reply.
META_STOP_SEQUENCE = "stop_sequence"
#: Anthropic: ``stop_details`` of a refusal (``category``, ``explanation``).
META_STOP_DETAILS = "stop_details"

# -- ToolCall.metadata keys -------------------------------------------------------------
#: Gemini: the call's ``thoughtSignature``, echoed on its ``functionCall`` part in the next request.
THOUGHT_SIGNATURE = "thought_signature"
#: OpenAI Responses: the ``function_call`` output item id (``fc_...``), sent back with its reasoning.
ITEM_ID = "item_id"

# -- raw_chunk kinds of the shared vocabulary -----------------------------------------------
#: ``data={"id": <reasoning block id>, "delta": <text>}``: reasoning text as it streams.
REASONING_DELTA = "reasoning_delta"
#: ``data={"id": <reasoning block id>, "reasoning": <Reasoning as a JSON dict>}``: a block ended.
REASONING_COMPLETED = "reasoning_completed"
#: ``data={"delta": <text>}``: refusal text as it streams (the whole text ends in ``Message.refusal``).
REFUSAL_DELTA = "refusal_delta"


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
    """The full text of one text block, after its deltas (every adapter; same ``id`` as its deltas)."""

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


# -- orchestration events (the chat layer, rx_allm.orchestration) -----------------------------------
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


def reasoning_delta(block_id: str, delta: str) -> RawChunk:
    """A fragment of reasoning text of the block ``block_id``."""
    return RawChunk(kind=REASONING_DELTA, data={"id": block_id, "delta": delta})


def reasoning_completed(block_id: str, reasoning: Reasoning) -> RawChunk:
    """The end of the reasoning block ``block_id`` with everything kept of it."""
    return RawChunk(
        kind=REASONING_COMPLETED,
        data={"id": block_id, "reasoning": reasoning.model_dump(mode="json", exclude_none=True)},
    )


def refusal_delta(delta: str) -> RawChunk:
    """A fragment of the provider's refusal text."""
    return RawChunk(kind=REFUSAL_DELTA, data={"delta": delta})


__all__ = [
    "ITEM_ID",
    "META_MODEL",
    "META_NATIVE_FINISH_REASON",
    "META_PROVIDER",
    "META_RESPONSE_ID",
    "META_STOP_DETAILS",
    "META_STOP_SEQUENCE",
    "REASONING_COMPLETED",
    "REASONING_DELTA",
    "REFUSAL_DELTA",
    "THOUGHT_SIGNATURE",
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
    "reasoning_completed",
    "reasoning_delta",
    "refusal_delta",
    "usage_chunk",
]
