"""The Vercel AI SDK UI message stream (protocol ``v1``), what ``useChat`` consumes.

``ai_sdk_frames(events)`` maps chat or generate events to the stream's chunks::

    start → start-step → text-start/delta/end, reasoning-start/delta/end,
    tool-input-start/delta/available, tool-output-available (or tool-output-error)
    → finish-step → … → finish {finishReason, messageMetadata.usage}

A reasoning block's ``reasoning-end`` and a tool call's ``tool-input-available`` carry what the
provider needs back to continue the conversation (a thinking signature, a thought signature,
a reasoning item) as ``providerMetadata[METADATA_KEY]``, and a step's message metadata goes
out as a :data:`DATA_PART` part: ``useChat`` keeps them on the message and sends them back,
and :func:`~rx_allm.ui.messages_from_ai_sdk` restores them.

An upstream error becomes one ``error`` chunk (``errorText`` = ``"<reason>: <message>"``,
keys redacted); a cancelled stream (``StreamError("cancelled")``) becomes ``abort``.
:func:`ai_sdk_sse` adds the SSE framing and the closing ``data: [DONE]``; send it with
:data:`AI_SDK_HEADERS` (the protocol's ``x-vercel-ai-ui-message-stream: v1`` header).
"""

from __future__ import annotations

from typing import Any

from reactivex import Observable

from rx_allm.models import ToolCall
from rx_allm.ui._encoder import Chunk, FrameEncoder, error_text, jsonable
from rx_allm.ui._inbound import METADATA_KEY
from rx_allm.ui.framing import SSE_DONE, frames, sse_frames

#: Response headers of a UI message stream.
AI_SDK_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}

#: rx_allm finish reasons in the protocol's spelling.
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "content_filter": "content-filter",
    "error": "error",
    "other": "other",
}

#: The data part of a step whose message the adapter kept data on (``Message.metadata``: a
#: Responses message item id, which the reasoning item before it needs back).
DATA_PART = f"data-{METADATA_KEY}"

#: The delta chunks: their SSE frames reuse one encoded head per block.
DELTAS = {
    "text-delta": ("id", "delta"),
    "reasoning-delta": ("id", "delta"),
    "tool-input-delta": ("toolCallId", "inputTextDelta"),
}


class AiSdkEncoder(FrameEncoder):
    """Chunks of the AI SDK UI message stream."""

    sends_reasoning_data = True

    def __init__(self, message_id: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.message_id = message_id
        self.metadata = metadata

    def opening(self) -> list[Chunk]:
        start: Chunk = {"type": "start"}
        if self.message_id is not None:
            start["messageId"] = self.message_id
        if self.metadata:
            start["messageMetadata"] = jsonable(self.metadata)
        return [start]

    def step_start(self, event: Any) -> list[Chunk]:
        return [{"type": "start-step"}]

    def step_end(self) -> list[Chunk]:
        return [{"type": "finish-step"}]

    def text_start(self, block: str) -> list[Chunk]:
        return [{"type": "text-start", "id": block}]

    def text_delta(self, block: str, delta: str) -> list[Chunk]:
        return [{"type": "text-delta", "id": block, "delta": delta}]

    def text_end(self, block: str) -> list[Chunk]:
        return [{"type": "text-end", "id": block}]

    def reasoning_start(self, block: str) -> list[Chunk]:
        return [{"type": "reasoning-start", "id": block}]

    def reasoning_delta(self, block: str, delta: str) -> list[Chunk]:
        return [{"type": "reasoning-delta", "id": block, "delta": delta}]

    def reasoning_end(self, block: str, kept: dict[str, Any]) -> list[Chunk]:
        chunk: Chunk = {"type": "reasoning-end", "id": block}
        data = {name: value for name, value in kept.items() if name != "text"}
        if data:
            chunk["providerMetadata"] = {METADATA_KEY: data}
        return [chunk]

    def tool_start(self, call_id: str, name: str) -> list[Chunk]:
        return [{"type": "tool-input-start", "toolCallId": call_id, "toolName": name}]

    def tool_delta(self, call_id: str, delta: str) -> list[Chunk]:
        return [{"type": "tool-input-delta", "toolCallId": call_id, "inputTextDelta": delta}]

    def tool_end(self, call: ToolCall, streamed: bool) -> list[Chunk]:
        chunk: Chunk = {"type": "tool-input-available", "toolCallId": call.id, "toolName": call.name}
        chunk["input"] = call.arguments
        if call.metadata:
            chunk["providerMetadata"] = {METADATA_KEY: jsonable(call.metadata)}
        return [chunk]

    def tool_output(self, call_id: str, name: str, result: Any, is_error: bool) -> list[Chunk]:
        if is_error:
            return [{"type": "tool-output-error", "toolCallId": call_id, "errorText": str(result)}]
        return [{"type": "tool-output-available", "toolCallId": call_id, "output": jsonable(result)}]

    def message_end(self, metadata: dict[str, Any]) -> list[Chunk]:
        if not metadata:
            return []
        return [{"type": DATA_PART, "data": jsonable(metadata)}]

    def ask_user(self, call_id: str, tool_name: str, question: str) -> list[Chunk]:
        data = {"toolCallId": call_id, "toolName": tool_name, "question": question}
        return [{"type": "data-ask-user", "id": call_id, "data": data}]

    def finish(self, usage: dict[str, int]) -> list[Chunk]:
        chunk: Chunk = {"type": "finish"}
        reason = FINISH_REASONS.get(self.finish_reason or "")
        if reason is not None:
            chunk["finishReason"] = reason
        if usage:
            chunk["messageMetadata"] = {"usage": usage}
        return [chunk]

    def error(self, error: BaseException) -> list[Chunk]:
        return [{"type": "error", "errorText": error_text(error)}]

    def abort(self, reason: str) -> list[Chunk]:
        return [{"type": "abort", "reason": reason}]


def ai_sdk_frames(
    events: Observable[Any], *, message_id: str | None = None, metadata: dict[str, Any] | None = None
) -> Observable[Chunk]:
    """The UI message stream chunks (dicts) for chat or generate ``events``.

    ``message_id`` names the assistant message (``start.messageId``); ``metadata`` goes
    out as the ``start`` chunk's ``messageMetadata`` (e.g. provider and model).
    """
    return frames(events, lambda: AiSdkEncoder(message_id, metadata))


def ai_sdk_sse(
    events: Observable[Any], *, message_id: str | None = None, metadata: dict[str, Any] | None = None
) -> Observable[bytes]:
    """:func:`ai_sdk_frames` as SSE bytes, ending with ``data: [DONE]``."""
    return sse_frames(events, lambda: AiSdkEncoder(message_id, metadata), DELTAS, SSE_DONE)
