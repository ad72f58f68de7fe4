"""The protocol-neutral walk over rx_allm events that both browser protocols share.

:class:`FrameEncoder` follows a chat or generate event stream and calls one hook per
UI moment (a text block opens, a tool call's input is complete, a step ends...); a
protocol subclass turns each hook into its own chunk dicts. The walk decides:

* a text block opens on its first delta and closes on ``text_completed``, on a block
  with another id, on a tool call, on reasoning, or when the message completes; its id is
  ``txt-<step>-<adapter's block id>`` (``txt-<step>-<n>`` when the adapter gives none);
* reasoning arrives as ``RawChunk(kind="reasoning_delta", data={"id", "delta"})`` and
  ends at ``RawChunk(kind="reasoning_completed")`` (whose kept reasoning — signature,
  redacted data, item id — the closing hook receives) or at the next text or tool call;
* a step opens on ``message_started`` and closes on ``step_completed`` (chat), on the
  next ``message_started``, or at the end, so tool results land inside their step;
* usage is the last usage chunk of each step, summed over the steps.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from pydantic_core import to_jsonable_python

from rx_allm.conversation import sum_usage
from rx_allm.errors import RxAllmError, StreamError
from rx_allm.models import ToolCall, Usage

Chunk = dict[str, Any]


def typed(error: BaseException) -> RxAllmError:
    """``error`` as a typed error (an untyped one becomes ``StreamError("unknown")``)."""
    if isinstance(error, RxAllmError):
        return error
    return StreamError("unknown", f"stream failed: {type(error).__name__}: {error}")


def error_text(error: BaseException) -> str:
    """One line for a browser: ``"<reason>: <message>"`` (error messages are redacted when built)."""
    known = typed(error)
    return f"{known.reason}: {known.message}".replace("\n", " ")


def error_reason(error: BaseException) -> str:
    """The typed reason of ``error`` (``"unknown"`` for an untyped one)."""
    return str(typed(error).reason)


def jsonable(value: Any) -> Any:
    """A JSON-ready form of a tool result (pydantic models, dataclasses... included)."""
    return to_jsonable_python(value, fallback=str)


def result_text(value: Any) -> str:
    """A tool result as text: a string as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))


class FrameEncoder(ABC):
    """Turns rx_allm events into protocol chunks through the hooks a subclass implements."""

    #: The protocol carries a reasoning's provider data: a reasoning end that has some opens an
    #: empty block for it when its text already closed (or it has none).
    sends_reasoning_data = False

    def __init__(self) -> None:
        self.step = 0
        self._step_open = False
        self._text: str | None = None  # the open text block's id as sent
        self._text_key: str | None = None  # ... and as the adapter gave it
        self._text_count = 0
        self._text_streamed = False
        self._reasoning: str | None = None
        self._tools_started: set[str] = set()
        self._tools_streamed: set[str] = set()
        self._usage: list[Usage] = []
        self._step_usage: Usage | None = None
        self.finish_reason: str | None = None
        self.pending_calls: list[str] = []  # tool calls left for the client (manual tools)
        self._dispatch: dict[str, Callable[[Any], list[Chunk]]] = {
            "message_started": self._message_started,
            "text_delta": self._text_delta,
            "text_completed": self._text_completed,
            "raw_chunk": self._raw_chunk,
            "tool_call_started": self._tool_call_started,
            "tool_call_delta": self._tool_call_delta,
            "tool_call_completed": self._tool_call_completed,
            "message_completed": self._message_completed,
            "tool_execution_completed": self._tool_execution_completed,
            "ask_user_requested": self._ask_user,
            "step_completed": lambda _event: self._end_step(),
            "chat_completed": self._chat_completed,
        }

    # -- driving ------------------------------------------------------------------
    def event(self, event: Any) -> list[Chunk]:
        """The chunks for one event (none for an event the protocol does not show)."""
        kind = event.type
        if (
            kind == "text_delta"
            and self._text is not None
            and (event.id is None or event.id == self._text_key)
        ):
            return self.text_delta(self._text, event.delta)  # the hot path: a delta of the open block
        handle = self._dispatch.get(kind)
        return handle(event) if handle is not None else []

    def completed(self) -> list[Chunk]:
        """The chunks that end a successful stream."""
        return self._close_blocks() + self._end_step() + self.finish(self.usage())

    def failed(self, error: BaseException) -> list[Chunk]:
        """The chunks that end a failed stream: ``abort`` for a cancellation, else the error."""
        closing = self._close_blocks()
        if isinstance(error, StreamError) and error.reason == "cancelled":
            return closing + self.abort(error_text(error))
        return closing + self.error(error)

    def usage(self) -> dict[str, int]:
        """Token counts so far, summed over the steps."""
        steps = self._usage + ([self._step_usage] if self._step_usage is not None else [])
        return sum_usage(steps).model_dump(exclude_none=True, exclude={"extra"}) if steps else {}

    # -- the walk -------------------------------------------------------------------
    def _message_started(self, event: Any) -> list[Chunk]:
        out = self._close_blocks() + self._end_step()
        self.step += 1
        self._step_open = True
        self._text_count = 0
        self._text_streamed = False
        return out + self.step_start(event)

    def _text_delta(self, event: Any) -> list[Chunk]:
        return self._append_text(event.id, event.delta)

    def _append_text(self, key: str | None, delta: str) -> list[Chunk]:
        out = self._close_reasoning()
        if self._text is not None and key is not None and self._text_key != key:
            out += self._close_text()
        if self._text is None:
            self._text_count += 1
            self._text_key = key
            # Provider block ids repeat across steps (Anthropic's are indexes): the step makes them unique.
            self._text = f"txt-{self.step}-{key if key is not None else self._text_count}"
            out += self.text_start(self._text)
        self._text_streamed = True
        return out + self.text_delta(self._text, delta)

    def _text_completed(self, event: Any) -> list[Chunk]:
        streamed, self._text_streamed = self._text_streamed, False
        if not streamed and event.text:
            # Deltas were filtered out (emit_text_deltas=False): the block arrives whole.
            out = self._append_text(event.id, event.text) + self._close_text()
            self._text_streamed = False
            return out
        return self._close_text()

    def _raw_chunk(self, event: Any) -> list[Chunk]:
        if event.kind == "usage" and isinstance(event.data, Usage):
            self._step_usage = event.data
            return []
        if not isinstance(event.data, dict):
            return []
        if event.kind == "reasoning_completed":
            return self._reasoning_completed(event.data)
        delta = str(event.data.get("delta") or "") if event.kind == "reasoning_delta" else ""
        if not delta:
            return []
        opened, out = self._open_reasoning(event.data.get("id"))
        return out + self.reasoning_delta(opened, delta)

    def _open_reasoning(self, block: Any) -> tuple[str, list[Chunk]]:
        """The reasoning block ``block``, opened unless it is open (the text, another one, closes)."""
        out = self._close_text()
        if (
            self._reasoning is not None
            and block is not None
            and self._reasoning != f"rsn-{self.step}-{block}"
        ):
            out += self._close_reasoning()
        if self._reasoning is None:
            self._reasoning = f"rsn-{self.step}-{block if block is not None else 0}"
            out += self.reasoning_start(self._reasoning)
        return self._reasoning, out

    def _reasoning_completed(self, data: dict[str, Any]) -> list[Chunk]:
        """Close the reasoning block with what the provider needs back (a block with no text opens here)."""
        kept = data.get("reasoning")
        kept = kept if isinstance(kept, dict) else {}
        out: list[Chunk] = []
        if (
            self._reasoning is None
            and self.sends_reasoning_data
            and any(k not in ("text", "provider") for k in kept)
        ):
            # Redacted thinking, or data that comes after its text closed (a Gemini signature).
            out = self._open_reasoning(data.get("id"))[1]
        return out + self._close_reasoning(kept)

    def _tool_call_started(self, event: Any) -> list[Chunk]:
        out = self._close_blocks()
        if event.id in self._tools_started:
            return out
        self._tools_started.add(event.id)
        return out + self.tool_start(event.id, event.name)

    def _tool_call_delta(self, event: Any) -> list[Chunk]:
        if event.id not in self._tools_started:
            return []  # the completed call carries the whole input
        self._tools_streamed.add(event.id)
        return self.tool_delta(event.id, event.arguments_delta)

    def _tool_call_completed(self, event: Any) -> list[Chunk]:
        out = self._tool_call_started(event)
        call: ToolCall = event.to_call()
        if not call.raw_arguments:
            call = call.model_copy(
                update={"raw_arguments": json.dumps(call.arguments, separators=(",", ":"))}
            )
        return out + self.tool_end(call, event.id in self._tools_streamed)

    def _message_completed(self, event: Any) -> list[Chunk]:
        self.finish_reason = event.finish_reason
        return self._close_blocks() + self.message_end(event.message.metadata)

    def _tool_execution_completed(self, event: Any) -> list[Chunk]:
        return self.tool_output(event.id, event.name, event.result, bool(getattr(event, "is_error", False)))

    def _chat_completed(self, event: Any) -> list[Chunk]:
        self.pending_calls = [call.id for call in event.result.pending_tool_calls]
        return []

    def _ask_user(self, event: Any) -> list[Chunk]:
        return self.ask_user(event.tool_call_id, event.tool_name, event.question)

    def _end_step(self) -> list[Chunk]:
        if not self._step_open:
            return []
        self._step_open = False
        if self._step_usage is not None:
            self._usage.append(self._step_usage)
            self._step_usage = None
        return self._close_blocks() + self.step_end()

    def _close_blocks(self) -> list[Chunk]:
        return self._close_text() + self._close_reasoning()

    def _close_text(self) -> list[Chunk]:
        block, self._text = self._text, None
        return self.text_end(block) if block is not None else []

    def _close_reasoning(self, kept: dict[str, Any] | None = None) -> list[Chunk]:
        block, self._reasoning = self._reasoning, None
        return self.reasoning_end(block, kept or {}) if block is not None else []

    # -- hooks (a protocol implements them) -------------------------------------------
    @abstractmethod
    def opening(self) -> list[Chunk]:
        """Chunks sent when the stream is subscribed."""

    @abstractmethod
    def step_start(self, event: Any) -> list[Chunk]:
        """A model request (step) begins."""

    @abstractmethod
    def step_end(self) -> list[Chunk]:
        """The step ends (after its tool results)."""

    @abstractmethod
    def text_start(self, block: str) -> list[Chunk]:
        """A text block opens."""

    @abstractmethod
    def text_delta(self, block: str, delta: str) -> list[Chunk]:
        """A fragment of the open text block."""

    @abstractmethod
    def text_end(self, block: str) -> list[Chunk]:
        """The text block closes."""

    @abstractmethod
    def reasoning_start(self, block: str) -> list[Chunk]:
        """A reasoning block opens."""

    @abstractmethod
    def reasoning_delta(self, block: str, delta: str) -> list[Chunk]:
        """A fragment of the open reasoning block."""

    @abstractmethod
    def reasoning_end(self, block: str, kept: dict[str, Any]) -> list[Chunk]:
        """The reasoning block closes; ``kept``: its :class:`~rx_allm.models.Reasoning` as JSON
        (what the provider needs back: signature, ...), ``{}`` when it closed before its end."""

    @abstractmethod
    def message_end(self, metadata: dict[str, Any]) -> list[Chunk]:
        """The model's message of this step is complete; ``metadata``: what the adapter kept on
        it for the provider (``Message.metadata``: a Responses message item id)."""

    @abstractmethod
    def tool_start(self, call_id: str, name: str) -> list[Chunk]:
        """A tool call opens."""

    @abstractmethod
    def tool_delta(self, call_id: str, delta: str) -> list[Chunk]:
        """A fragment of a tool call's JSON arguments."""

    @abstractmethod
    def tool_end(self, call: ToolCall, streamed: bool) -> list[Chunk]:
        """A tool call is complete (``raw_arguments`` always set; ``streamed``: its arguments
        arrived as deltas; ``metadata``: its provider data, e.g. a Gemini thought signature)."""

    @abstractmethod
    def tool_output(self, call_id: str, name: str, result: Any, is_error: bool) -> list[Chunk]:
        """A tool ran: its result, or its error when ``is_error``."""

    @abstractmethod
    def ask_user(self, call_id: str, tool_name: str, question: str) -> list[Chunk]:
        """A tool asked the user a question."""

    @abstractmethod
    def finish(self, usage: dict[str, int]) -> list[Chunk]:
        """The stream completed (``usage``: the summed token counts reported)."""

    @abstractmethod
    def error(self, error: BaseException) -> list[Chunk]:
        """The stream failed with ``error``."""

    @abstractmethod
    def abort(self, reason: str) -> list[Chunk]:
        """The stream was cancelled."""
