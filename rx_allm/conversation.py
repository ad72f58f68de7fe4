"""Conversation data: :class:`Thread`, :class:`ToolOutcome`, :class:`StepResult`, :class:`ChatResult`.

Plain pydantic data (JSON round trip), shared by the chat loop (:mod:`rx_allm.orchestration`) and the
orchestration events that carry it (:mod:`rx_allm.events`), so it depends on nothing but
:mod:`rx_allm.models` and :mod:`rx_allm.errors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rx_allm.errors import RxAllmError
from rx_allm.models import Message, Response, ToolCall, Usage, user

#: How a chat ended; a tool's own :class:`~rx_allm.orchestration.Halt` reason is also possible.
HALT_REASONS = (
    "completed",
    "max_turns",
    "halt_when",
    "ask_user",
    "tool_error",
    "manual_tool_calls",
    "error",
    "cancelled",
)
OutcomeKind = Literal["result", "error", "ask_user", "halt", "pending"]


class Thread(BaseModel):
    """The messages of a conversation, with everything a provider needs to continue it.

    Assistant messages keep their tool calls (ids, provider metadata such as Gemini's
    ``thoughtSignature``) and reasoning; tool messages reference the call ids. Immutable:
    :meth:`extended` returns a new thread.
    """

    model_config = ConfigDict(frozen=True)

    messages: list[Message] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, source: Thread | Sequence[Message] | Message | str) -> Thread:
        """A thread from a thread, a list of messages, one message or a user text."""
        if isinstance(source, Thread):
            return source
        if isinstance(source, str):
            return cls(messages=[user(source)])
        if isinstance(source, Message):
            return cls(messages=[source])
        return cls(messages=list(source))

    def extended(self, messages: Iterable[Message]) -> Thread:
        """This thread with ``messages`` appended."""
        added = list(messages)
        if not added:
            return self
        return Thread(messages=[*self.messages, *added], metadata=self.metadata)

    @property
    def last(self) -> Message | None:
        """The last message, or None for an empty thread."""
        return self.messages[-1] if self.messages else None


class ToolOutcome(BaseModel):
    """What became of one tool call of a step.

    ``kind``: ``result`` (the tool returned), ``error`` (unknown tool, invalid arguments,
    exception, timeout; ``reason`` says which), ``ask_user`` (the tool raised
    ``AskUser``), ``halt`` (the tool returned ``Halt``), ``pending`` (a manual call the
    caller must answer). ``content`` is the tool message sent back to the model (None when
    nothing was sent: ``ask_user`` and ``pending``).
    """

    model_config = ConfigDict(frozen=True)

    call: ToolCall
    kind: OutcomeKind
    result: Any = None
    content: str | None = None
    reason: str | None = None
    question: str | None = None
    opts: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        """True for an error outcome."""
        return self.kind == "error"


class StepResult(BaseModel):
    """One model request of a chat and what its tool calls gave.

    ``thread`` is the thread after the step (assistant message and tool results appended).
    """

    model_config = ConfigDict(frozen=True)

    index: int
    response: Response
    tool_outcomes: list[ToolOutcome] = Field(default_factory=list)
    thread: Thread = Field(default_factory=Thread)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls the model made in this step."""
        return self.response.tool_calls


class ChatResult(BaseModel):
    """What :func:`rx_allm.orchestration` folds a chat into.

    ``halted_reason`` is one of :data:`HALT_REASONS` or a tool's own ``Halt`` reason;
    ``response`` is the last step's response (partial, with its error, when a step failed);
    ``usage`` sums every step (a field stays None only if no step reported it).
    """

    thread: Thread = Field(default_factory=Thread)
    response: Response = Field(default_factory=Response)
    steps: list[StepResult] = Field(default_factory=list)
    halted_reason: str = "completed"
    pending_tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    output_text: str = ""
    error: RxAllmError | None = None

    @property
    def ok(self) -> bool:
        """True when the chat ended without an error and was not cancelled."""
        return self.error is None and self.halted_reason != "cancelled"


def sum_usage(usages: Iterable[Usage]) -> Usage:
    """Field-wise sum; a field stays None only when every usage left it None."""
    totals: dict[str, int | None] = {}
    extra: dict[str, Any] = {}
    for usage in usages:
        for name in _COUNTS:
            value = getattr(usage, name)
            if value is not None:
                totals[name] = (totals.get(name) or 0) + value
        extra.update(usage.extra)
    return Usage(**totals, extra=extra)


_COUNTS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "reasoning_tokens",
)

__all__ = ["HALT_REASONS", "ChatResult", "OutcomeKind", "StepResult", "Thread", "ToolOutcome", "sum_usage"]
