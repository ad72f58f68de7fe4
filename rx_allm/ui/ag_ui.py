"""The AG-UI event stream: ``ag_ui_frames(events, thread_id=, run_id=)``.

Mapping (events → AG-UI)::

    subscription        RUN_STARTED {threadId, runId}
    message_started     STEP_STARTED {stepName: "step-<n>"}
    text                TEXT_MESSAGE_START {messageId, role: "assistant"} / _CONTENT / _END
    reasoning_delta     REASONING_START, REASONING_MESSAGE_START/CONTENT/END, REASONING_END
    reasoning_completed REASONING_ENCRYPTED_VALUE {subtype: "message", entityId: <its message>}
    tool calls          TOOL_CALL_START {toolCallId, toolCallName, parentMessageId} / _ARGS / _END
                        [REASONING_ENCRYPTED_VALUE {subtype: "tool-call", entityId: <call id>}]
    message_completed   [REASONING_ENCRYPTED_VALUE {subtype: "message", entityId: <its message>}]
    tool results        TOOL_CALL_RESULT {messageId, toolCallId, content, role: "tool"}
    ask_user_requested  CUSTOM {name: "ask_user", value: {...}}
    step end            STEP_FINISHED
    on_completed        RUN_FINISHED {outcome: {type: "success"[, pendingToolCallIds]}, result, usage: [...]}
    on_error            RUN_ERROR {message: "<reason>: <message>", code: <reason>} (keys redacted)
    cancelled           RUN_FINISHED {outcome: {type: "cancelled"}}

Message ids are ``<run_id>-<step>-<block>`` so they stay unique across steps and runs; a
step's tool calls name the step's last text message as their parent (``<run_id>-<step>-calls``
when it has no text), so the client keeps one assistant message per step.

What a provider needs back to continue the conversation goes out as AG-UI's opaque
``encryptedValue``, which the client stores on the message or tool call and returns in the
next ``RunAgentInput``: a reasoning message's :class:`~rx_allm.models.Reasoning` fields
(signature, redacted data, item id, encrypted content), a tool call's ``ToolCall.metadata``
(a Gemini thought signature) and a step's ``Message.metadata`` (a Responses message item id),
each as the JSON text ``{"rx_allm": {...}}`` (:func:`encrypted_value`), which
:func:`~rx_allm.ui.messages_from_ag_ui` restores.
:func:`ag_ui_sse` adds the SSE framing (AG-UI has no closing ``[DONE]`` line).
"""

from __future__ import annotations

import json
from typing import Any

from reactivex import Observable

from rx_allm._sse_response import SSE_HEADERS
from rx_allm.models import ToolCall
from rx_allm.ui._encoder import Chunk, FrameEncoder, error_reason, error_text, jsonable, result_text
from rx_allm.ui._inbound import METADATA_KEY
from rx_allm.ui.framing import frames, sse_frames

#: Response headers of an AG-UI event stream.
AG_UI_HEADERS = SSE_HEADERS

_USAGE_NAMES = {
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "total_tokens": "totalTokens",
    "reasoning_tokens": "reasoningTokens",
    "cached_input_tokens": "cachedInputTokens",
    "cache_write_input_tokens": "cacheWriteInputTokens",
}

#: The delta events: their SSE frames reuse one encoded head per block.
DELTAS = {
    "TEXT_MESSAGE_CONTENT": ("messageId", "delta"),
    "REASONING_MESSAGE_CONTENT": ("messageId", "delta"),
    "TOOL_CALL_ARGS": ("toolCallId", "delta"),
}


def encrypted_value(data: dict[str, Any]) -> str:
    """The ``encryptedValue`` carrying provider ``data``: the JSON text ``{"rx_allm": data}``."""
    return json.dumps({METADATA_KEY: jsonable(data)}, ensure_ascii=False, separators=(",", ":"))


def _kept(subtype: str, entity: str | None, data: dict[str, Any]) -> list[Chunk]:
    """A ``REASONING_ENCRYPTED_VALUE`` giving ``entity`` (a message or tool call id) ``data``."""
    if not data or entity is None:
        return []
    value = encrypted_value(data)
    return [
        {"type": "REASONING_ENCRYPTED_VALUE", "subtype": subtype, "entityId": entity, "encryptedValue": value}
    ]


class AgUiEncoder(FrameEncoder):
    """Events of the AG-UI protocol."""

    sends_reasoning_data = True

    def __init__(self, thread_id: str, run_id: str) -> None:
        super().__init__()
        self.thread_id = thread_id
        self.run_id = run_id
        self._last_message: str | None = None

    def _id(self, block: str) -> str:
        return f"{self.run_id}-{self.step}-{block}"

    def opening(self) -> list[Chunk]:
        return [{"type": "RUN_STARTED", "threadId": self.thread_id, "runId": self.run_id}]

    def step_start(self, event: Any) -> list[Chunk]:
        self._last_message = None
        return [{"type": "STEP_STARTED", "stepName": f"step-{self.step}"}]

    def step_end(self) -> list[Chunk]:
        return [{"type": "STEP_FINISHED", "stepName": f"step-{self.step}"}]

    def text_start(self, block: str) -> list[Chunk]:
        self._last_message = self._id(block)
        return [{"type": "TEXT_MESSAGE_START", "messageId": self._last_message, "role": "assistant"}]

    def text_delta(self, block: str, delta: str) -> list[Chunk]:
        return [{"type": "TEXT_MESSAGE_CONTENT", "messageId": self._id(block), "delta": delta}]

    def text_end(self, block: str) -> list[Chunk]:
        return [{"type": "TEXT_MESSAGE_END", "messageId": self._id(block)}]

    def reasoning_start(self, block: str) -> list[Chunk]:
        message = self._id(block)
        return [
            {"type": "REASONING_START", "messageId": message},
            {"type": "REASONING_MESSAGE_START", "messageId": message, "role": "reasoning"},
        ]

    def reasoning_delta(self, block: str, delta: str) -> list[Chunk]:
        return [{"type": "REASONING_MESSAGE_CONTENT", "messageId": self._id(block), "delta": delta}]

    def reasoning_end(self, block: str, kept: dict[str, Any]) -> list[Chunk]:
        message = self._id(block)
        data = {name: value for name, value in kept.items() if name != "text"}
        return [
            {"type": "REASONING_MESSAGE_END", "messageId": message},
            *_kept("message", message, data),
            {"type": "REASONING_END", "messageId": message},
        ]

    def tool_start(self, call_id: str, name: str) -> list[Chunk]:
        if self._last_message is None:
            self._last_message = self._id("calls")  # the client's assistant message for them
        return [
            {
                "type": "TOOL_CALL_START",
                "toolCallId": call_id,
                "toolCallName": name,
                "parentMessageId": self._last_message,
            }
        ]

    def tool_delta(self, call_id: str, delta: str) -> list[Chunk]:
        return [{"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": delta}]

    def tool_end(self, call: ToolCall, streamed: bool) -> list[Chunk]:
        args = [] if streamed else self.tool_delta(call.id, call.raw_arguments)
        return [
            *args,
            {"type": "TOOL_CALL_END", "toolCallId": call.id},
            *_kept("tool-call", call.id, call.metadata),
        ]

    def tool_output(self, call_id: str, name: str, result: Any, is_error: bool) -> list[Chunk]:
        return [
            {
                "type": "TOOL_CALL_RESULT",
                "messageId": f"{self.run_id}-result-{call_id}",
                "toolCallId": call_id,
                "content": result_text(result),
                "role": "tool",
            }
        ]

    def message_end(self, metadata: dict[str, Any]) -> list[Chunk]:
        return _kept("message", self._last_message, metadata)

    def ask_user(self, call_id: str, tool_name: str, question: str) -> list[Chunk]:
        value = {"toolCallId": call_id, "toolName": tool_name, "question": question}
        return [{"type": "CUSTOM", "name": "ask_user", "value": value}]

    def finish(self, usage: dict[str, int]) -> list[Chunk]:
        chunk: Chunk = {
            "type": "RUN_FINISHED",
            "threadId": self.thread_id,
            "runId": self.run_id,
            "outcome": {"type": "success"},
        }
        if self.pending_calls:
            chunk["outcome"]["pendingToolCallIds"] = self.pending_calls
        if self.finish_reason is not None:
            chunk["result"] = {"finishReason": self.finish_reason}
        if usage:
            chunk["usage"] = [{_USAGE_NAMES[name]: value for name, value in usage.items()}]
        return [chunk]

    def error(self, error: BaseException) -> list[Chunk]:
        return [{"type": "RUN_ERROR", "message": error_text(error), "code": error_reason(error)}]

    def abort(self, reason: str) -> list[Chunk]:
        return [
            {
                "type": "RUN_FINISHED",
                "threadId": self.thread_id,
                "runId": self.run_id,
                "outcome": {"type": "cancelled"},
            }
        ]


def ag_ui_frames(events: Observable[Any], *, thread_id: str, run_id: str) -> Observable[Chunk]:
    """The AG-UI events (dicts) for chat or generate ``events`` in run ``run_id`` of ``thread_id``."""
    return frames(events, lambda: AgUiEncoder(thread_id, run_id))


def ag_ui_sse(events: Observable[Any], *, thread_id: str, run_id: str) -> Observable[bytes]:
    """:func:`ag_ui_frames` as SSE bytes."""
    return sse_frames(events, lambda: AgUiEncoder(thread_id, run_id), DELTAS)
