"""Request and response data: messages, tools, tool calls, usage, responses.

Models are lenient containers (types only); the semantic rules (known roles,
tool names, ranges) are checked by the runner's pre-flight so every problem of
a request is reported at once as one typed :class:`~rx_allm.errors.ValidationError`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from rx_allm.errors import AdapterError, StreamError, ValidationError
from rx_allm.schema import normalize_format

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]
#: ``"text"``, ``"json_object"``, a ``json_schema`` dict, or a pydantic model class.
ResponseFormat = str | dict[str, Any] | type[BaseModel]


#: Where a fold stands: ``message_completed`` seen, a terminal error, or neither (yet).
ResponseStatus = Literal["completed", "error", "unfinished"]


class Reasoning(BaseModel):
    """One piece of the model's reasoning, in one shape for every provider.

    ``text`` is the readable reasoning (Anthropic thinking, a Responses reasoning summary,
    Gemini thought summaries, a compatible server's ``reasoning_content``). The other fields
    are what the provider needs back to continue the conversation, kept verbatim:
    ``signature`` (Anthropic thinking signature; Gemini's ``thoughtSignature`` on a text
    part), ``redacted`` (Anthropic ``redacted_thinking`` data), ``id`` and
    ``encrypted_content`` (OpenAI Responses reasoning item). ``provider`` is the adapter
    that produced it: request builders send it back only to that provider and drop it
    for the others.
    """

    model_config = ConfigDict(frozen=True)

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    id: str | None = None
    encrypted_content: str | None = None
    provider: str | None = None


class ToolCall(BaseModel):
    """A call the model asked for: ``arguments`` parsed, ``raw_arguments`` as sent."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    """One conversation turn. ``role`` is one of system/user/assistant/tool.

    An assistant message from a stream also carries ``reasoning`` (in order, with what the
    provider needs to continue) and ``refusal``: the provider's refusal text when it
    declined to answer (``None`` otherwise; ``""`` when it refused without a text).
    """

    model_config = ConfigDict(frozen=True)

    role: str
    content: str | list[dict[str, Any]] = ""
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    reasoning: list[Reasoning] = Field(default_factory=list)
    refusal: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        """The text of the message (text parts joined when content is a list)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type", "text") == "text")


class Tool(BaseModel):
    """A function the model may call; ``schema_`` is its JSON Schema (serialized as ``schema``)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    name: str
    description: str = ""
    schema_: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}, alias="schema"
    )


class Request(BaseModel):
    """A single generation request. ``options`` is merged verbatim into the provider body.

    ``response_format`` is ``"text"``, ``"json_object"``, a ``json_schema`` dict, or a
    pydantic model class (sent as the provider's strict JSON schema; serialized as that
    ``json_schema`` dict). Unknown fields are refused: a typo must not vanish.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: list[Message]
    model: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    response_format: ResponseFormat | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("response_format")
    def _format_as_data(self, fmt: ResponseFormat | None) -> Any:
        return normalize_format(fmt)


class Usage(BaseModel):
    """Token counts in provider-neutral names; ``None`` means "not reported" (never an invented 0).

    ``input_tokens`` is the whole prompt, cached reads and cache writes included.
    """

    model_config = ConfigDict(frozen=True)

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Response(BaseModel):
    """What :func:`rx_allm.generate` folds a stream into.

    A stream that ended with an error still gives a Response: ``finish_reason`` is
    ``"error"``, ``error`` holds the typed error and the partial output is kept.
    With ``response_format=Model``, ``output`` is the final text validated into
    ``Model``; text that does not validate leaves it None and sets ``error`` to
    ``ValidationError("invalid_output")`` (the provider's ``finish_reason`` is kept). A fold
    that saw neither ``message_completed`` nor an error (nothing folded yet, a stream cut
    by ``take_until``) is *unfinished*: ``completed`` is False and ``ok`` is False.
    """

    message: Message = Field(default_factory=lambda: Message(role="assistant"))
    completed: bool = False
    output_text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage = Field(default_factory=Usage)
    error: AdapterError | StreamError | ValidationError | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    output: Any = None

    @property
    def ok(self) -> bool:
        """True once ``message_completed`` was folded and no error was."""
        return self.completed and self.error is None

    @property
    def status(self) -> ResponseStatus:
        """``"completed"``, ``"error"`` or ``"unfinished"`` (see the class docstring)."""
        if self.error is not None:
            return "error"
        return "completed" if self.completed else "unfinished"

    @property
    def refusal(self) -> str | None:
        """The provider's refusal text (``finish_reason`` is then ``"content_filter"``), else None."""
        return self.message.refusal

    @property
    def reasoning(self) -> list[Reasoning]:
        """The reply's reasoning (``message.reasoning``)."""
        return self.message.reasoning


# -- constructors ------------------------------------------------------------
def system(text: str) -> Message:
    """A system message."""
    return Message(role="system", content=text)


def user(text: str | list[dict[str, Any]]) -> Message:
    """A user message (text, or a list of content parts)."""
    return Message(role="user", content=text)


def assistant(text: str, *, tool_calls: list[ToolCall] | None = None) -> Message:
    """An assistant message, optionally with the tool calls it made."""
    return Message(role="assistant", content=text, tool_calls=tool_calls or [])


def tool_result(
    tool_call_id: str, content: str | dict[str, Any] | list[Any], *, name: str | None = None
) -> Message:
    """The result of a tool call; non-string content is sent as JSON text."""
    import json

    body = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return Message(role="tool", content=body, tool_call_id=tool_call_id, name=name)


def tool(*, name: str, description: str = "", schema: dict[str, Any] | None = None) -> Tool:
    """A tool definition (``schema`` is a JSON Schema object)."""
    if schema is None:
        return Tool(name=name, description=description)
    return Tool(name=name, description=description, schema=schema)


def request(messages: list[Message], **fields: Any) -> Request:
    """Build a :class:`Request`; a malformed or unknown field raises :class:`rx_allm.ValidationError`."""
    import pydantic

    from rx_allm.strict import unknown_names

    try:
        return Request(messages=messages, **fields)
    except pydantic.ValidationError as exc:
        errors = [
            (".".join(str(p) for p in e["loc"]) or "request", e["type"])
            for e in exc.errors()
            if e["type"] != "extra_forbidden"
        ]
        errors += unknown_names(
            [k for k in fields if k not in Request.model_fields], Request.model_fields, "field"
        )
        raise ValidationError("invalid_request", errors=errors) from None


__all__ = [
    "FinishReason",
    "Message",
    "Reasoning",
    "Request",
    "Response",
    "ResponseStatus",
    "Role",
    "Tool",
    "ToolCall",
    "Usage",
    "assistant",
    "request",
    "system",
    "tool",
    "tool_result",
    "user",
]
