"""``Session``: a conversation that pauses for tools and users and resumes later (JSON round trip).

A session holds the thread and where the conversation stands, never the engine. Each
``stream_reply`` runs one chat over the thread and updates the session as the events
fold; disposal leaves it consistent (``halted_reason="cancelled"``, status ``idle``, the
thread as of the last completed step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import reactivex
from pydantic import BaseModel, Field
from reactivex import Observable, abc
from reactivex import operators as ops

from rx_allm.conversation import ChatResult, Thread
from rx_allm.engine import Engine
from rx_allm.errors import RxAllmError, ValidationError
from rx_allm.events import AskUserRequested, Event, StepCompleted
from rx_allm.models import Message, ToolCall, tool_result, user
from rx_allm.orchestration.execute import submitted_outcome
from rx_allm.orchestration.fold import ChatCollector, fold_chat, with_output
from rx_allm.orchestration.loop import stream_chat
from rx_allm.schema import output_type

SessionStatus = Literal["idle", "awaiting_tools", "awaiting_user", "completed", "error"]
_STATUS_OF: dict[str, SessionStatus] = {
    "error": "error",
    "ask_user": "awaiting_user",
    "manual_tool_calls": "awaiting_tools",
    "cancelled": "idle",
}


class Session(BaseModel):
    """A resumable conversation: ``thread``, ``status`` and what it is waiting for.

    ``status``: ``idle`` (ready for a reply), ``awaiting_tools`` (``pending_tool_calls``
    need :meth:`submit_tool_results`), ``awaiting_user`` (``question`` needs
    :meth:`answer`), ``completed`` (the last chat ended; a new reply continues it),
    ``error`` (the last chat failed: ``error``; a new reply retries from the thread).
    """

    thread: Thread = Field(default_factory=Thread)
    status: SessionStatus = "idle"
    halted_reason: str | None = None
    pending_tool_calls: list[ToolCall] = Field(default_factory=list)
    question: AskUserRequested | None = None
    error: RxAllmError | None = None

    def stream_reply(
        self, engine: Engine, message: str | Message | None = None, **options: Any
    ) -> Observable[Event]:
        """The chat events of one reply (``message`` None continues after answers and tool results).

        Options are :func:`rx_allm.stream_chat`'s. Raises :class:`ValidationError` while the
        session awaits tool results or an answer, and for the chat's pre-flight errors.
        """
        return self._reply(engine, message, options)[1]

    async def reply(self, engine: Engine, message: str | Message | None = None, **options: Any) -> ChatResult:
        """Run :meth:`stream_reply` to its end and return the chat's result.

        With ``response_format=Model`` the final answer is validated into
        ``result.response.output`` as :func:`rx_allm.chat` does; an answer that does not
        validate sets ``result.error`` only: the session stays as the events left it
        (``completed``, the answer in its thread), exactly as after :meth:`stream_reply`.
        """
        thread, events = self._reply(engine, message, options)
        result = await fold_chat(events, ChatCollector(thread))
        fmt = options.get("response_format") or engine.params.get("response_format")
        return with_output(result, output_type(fmt))

    def _reply(
        self, engine: Engine, message: str | Message | None, options: dict[str, Any]
    ) -> tuple[Thread, Observable[Event]]:
        if self.status in ("awaiting_tools", "awaiting_user"):
            raise ValidationError(
                "invalid_request",
                f"the session is {self.status}: answer it before replying",
                errors=[("session.status", str(self.status))],
            )
        added = [] if message is None else [user(message) if isinstance(message, str) else message]
        thread = self.thread.extended(added)
        events = stream_chat(engine, thread, **options)

        def start(_scheduler: abc.SchedulerBase | None = None) -> Observable[Event]:
            folder = ChatCollector(thread)
            self.thread, self.halted_reason = thread, None

            def on_next(event: Event) -> None:
                folder.apply(event)
                if isinstance(event, StepCompleted):
                    self.thread = event.thread

            def on_error(error: Exception) -> None:
                folder.fail(error)
                self._settle(folder.to_result())

            return events.pipe(
                ops.do_action(on_next, on_error, lambda: self._settle(folder.to_result())),
                ops.finally_action(lambda: None if folder.finished else self._settle(folder.to_result())),
            )

        return thread, reactivex.defer(start)

    def submit_tool_results(self, results: Mapping[str, Any]) -> None:
        """Give results (``{call_id: result}``) for pending manual calls; idle once none is pending."""
        pending = {call.id: call for call in self.pending_tool_calls}
        unknown = [call_id for call_id in results if call_id not in pending]
        if self.status != "awaiting_tools" or unknown:
            errors = [(f"results.{call_id}", "not_pending") for call_id in unknown] or [
                ("session.status", self.status)
            ]
            raise ValidationError("invalid_request", "no such pending tool call", errors=errors)
        sent: list[Message] = []
        for call_id, value in results.items():
            outcome = submitted_outcome(pending[call_id], value)
            sent.append(tool_result(call_id, outcome.content or "", name=pending[call_id].name))
        self.thread = self.thread.extended(sent)
        self.pending_tool_calls = [c for c in self.pending_tool_calls if c.id not in results]
        self._settle_waiting()

    def answer(self, text: str) -> None:
        """Answer the pending ``AskUser`` question (it becomes that tool call's result)."""
        question = self.question
        if self.status != "awaiting_user" or question is None:
            raise ValidationError(
                "invalid_request",
                "the session has no pending question",
                errors=[("session.status", str(self.status))],
            )
        self.thread = self.thread.extended(
            [tool_result(question.tool_call_id, text, name=question.tool_name)]
        )
        self.question = None
        self._settle_waiting()

    def _settle_waiting(self) -> None:
        if self.question is not None:
            self.status = "awaiting_user"
        elif self.pending_tool_calls:
            self.status = "awaiting_tools"
        else:
            self.status = "idle"

    def _settle(self, result: ChatResult) -> None:
        self.thread = result.thread
        self.halted_reason = result.halted_reason
        self.pending_tool_calls = list(result.pending_tool_calls)
        self.error = result.error
        self.question = None
        last = result.steps[-1].tool_outcomes if result.steps and result.halted_reason == "ask_user" else []
        for outcome in last:
            if outcome.kind == "ask_user":
                self.question = AskUserRequested(
                    tool_call_id=outcome.call.id,
                    tool_name=outcome.call.name,
                    question=outcome.question or "",
                    opts=outcome.opts,
                )
                break
        self.status = _STATUS_OF.get(result.halted_reason, "completed")


__all__ = ["Session", "SessionStatus"]
