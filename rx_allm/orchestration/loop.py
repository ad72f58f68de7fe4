"""``stream_chat``: the tool loop as one cold Observable.

Each subscription runs its own conversation: step *n* is one generation (as
``stream_generate`` would open it, see :mod:`rx_allm.orchestration.steps`) whose events pass
through (its ``on_event`` and the three filters apply); when the step's
message has tool calls, the tools run concurrently, each call's three orchestration
events are emitted together as it completes, the results enter the thread in the model's
call order, one ``step_completed`` follows, and either the next step starts or the chat
halts with one ``chat_completed``. Disposal at any moment disposes the step in flight
(which cancels its HTTP request) and cancels running tools; nothing further is sent. A
traced chat (:meth:`ChatObservable.traced`) also reports each step's subscription and each
tool run's start and outcome to its :class:`ChatTrace`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reactivex import Observable, abc
from reactivex.scheduler import VirtualTimeScheduler

from rx_allm._loop import loop_for_subscription
from rx_allm._subscribe import subscribe_now
from rx_allm.collector import StreamCollector
from rx_allm.conversation import ChatResult, StepResult, Thread, ToolOutcome, sum_usage
from rx_allm.engine import Engine
from rx_allm.errors import ValidationError
from rx_allm.events import (
    AskUserRequested,
    ChatCompleted,
    Event,
    StepCompleted,
    ToolExecutionCompleted,
    ToolExecutionStarted,
    ToolHalt,
    ToolResultEncoded,
)
from rx_allm.models import Message, Response, ToolCall
from rx_allm.orchestration.execute import (
    Finished,
    LoopRunner,
    Runner,
    ToolRun,
    VirtualRunner,
    check_call,
    outcome_of,
)
from rx_allm.orchestration.options import ChatOptions, callback_error, chat_options
from rx_allm.orchestration.steps import StepRequests
from rx_allm.orchestration.tools import FunctionTool, Toolbox, ToolLike
from rx_allm.runner import OnEvent, event_filter


@dataclass(slots=True)
class ChatPlan:
    """Everything a subscription needs, checked before any I/O (shared by subscriptions, never changed)."""

    requests: StepRequests
    thread: Thread
    toolbox: Toolbox
    options: ChatOptions
    keep: Callable[[Event], bool]


ChatHook = Callable[[Observable[Event], Engine, dict[str, Any]], Observable[Event]]
#: Wraps each chat Observable when set (by :func:`rx_allm.otel.instrument`); None costs nothing.
chat_hook: ChatHook | None = None


class ChatTrace(Protocol):
    """What a traced subscription reports to (see :meth:`ChatObservable.traced`)."""

    def subscribing(self) -> Callable[[], None]:
        """Called before a step's request is subscribed; the function it returns, right after."""

    def tool_started(self, call: ToolCall, tool: FunctionTool | None) -> Callable[[ToolOutcome], None]:
        """Called as a tool run starts (or fails its checks); the function it returns gets the outcome."""


def stream_chat(
    engine: Engine,
    messages: Thread | Sequence[Message] | Message | str,
    *,
    tools: Iterable[ToolLike] = (),
    on_event: OnEvent | None = None,
    emit_text_deltas: bool = True,
    emit_tool_deltas: bool = True,
    include_raw_chunks: bool = False,
    **options: Any,
) -> Observable[Event]:
    """A cold Observable of a whole conversation: every step's events, the tool events, ``chat_completed``.

    Chat options (engine params are their defaults): ``mode`` (``"auto"`` | ``"manual"``),
    ``max_turns`` (model requests, default 8), ``halt_when(step)``, ``tool_timeout``
    (seconds, default 30; a tool's own ``timeout`` wins), ``on_tool_error``
    (``"continue"`` | ``"halt"`` | a callable of the :class:`ToolOutcome`). Every other
    option goes to each step's ``stream_generate``. Bad tools or options raise
    :class:`~rx_allm.errors.ValidationError`, and the first request's pre-flight errors
    raise, here (before any I/O).
    """
    call_options = dict(options)
    chat_opts = chat_options(engine, call_options)
    tool_list = list(tools)
    toolbox = Toolbox(tool_list if tool_list else engine.tools)
    thread = Thread.of(messages)
    requests = StepRequests.prepare(engine, thread, toolbox.specs, on_event, call_options)
    plan = ChatPlan(
        requests=requests,
        thread=thread,
        toolbox=toolbox,
        options=chat_opts,
        keep=event_filter(emit_text_deltas, emit_tool_deltas, include_raw_chunks),
    )
    first_step = requests.first()  # built now: the adapter's pre-flight errors raise here too
    chat = ChatObservable(plan, first_step)
    return chat if chat_hook is None else chat_hook(chat, engine, call_options)


class ChatObservable(Observable[Event]):
    """The cold Observable of a chat: each subscription runs its own :class:`ChatRun`."""

    def __init__(self, plan: ChatPlan, first_step: Observable[Event], trace: ChatTrace | None = None) -> None:
        super().__init__()
        self._plan = plan
        self._first_step = first_step
        self._trace = trace

    def traced(self, trace: ChatTrace) -> ChatObservable:
        """This chat with its subscriptions reporting their step requests and tool runs to ``trace``."""
        return ChatObservable(self._plan, self._first_step, trace)

    def _subscribe_core(
        self, observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = ChatRun(self._plan, self._first_step, observer, scheduler, self._trace)
        run.begin_step()
        return run


_NO_RESPONSE = Response()


class ChatRun(abc.ObserverBase[Event], abc.DisposableBase):
    """One subscription's conversation: a small state machine driven by step and tool completions.

    It observes the step in flight (``on_next`` / ``on_error`` / ``on_completed``) and is
    the subscription's disposable.
    """

    def __init__(
        self,
        plan: ChatPlan,
        first_step: Observable[Event],
        observer: abc.ObserverBase[Event],
        scheduler: abc.SchedulerBase | None,
        trace: ChatTrace | None = None,
    ) -> None:
        self.plan = plan
        self.trace = trace
        self.first_step = first_step
        self.observer = observer
        self.scheduler = scheduler
        self.runner: Runner = (
            VirtualRunner(scheduler)
            if isinstance(scheduler, VirtualTimeScheduler)
            else LoopRunner(loop_for_subscription())
        )
        self.thread = plan.thread
        self.steps: list[StepResult] = []
        self.collector: StreamCollector  # a fresh one per step (begin_step)
        self.step_subscription: abc.DisposableBase | None = None
        self.in_flight = False  # a step's request is in flight (its subscription is held)
        self.cancels: list[Callable[[], None]] = []
        self.outcomes: list[ToolOutcome | None] = []
        self.waiting = 0
        self.response: Response = _NO_RESPONSE
        self.ended = False

    # -- model requests ---------------------------------------------------------------------
    def begin_step(self) -> None:
        """Send the next model request (the first one was built by ``stream_chat``)."""
        if self.ended:
            return
        number = len(self.steps) + 1
        requests = self.plan.requests
        try:
            source = requests.step(self.thread, number) if number > 1 else self.first_step
        except Exception as exc:  # the adapter's pre-flight of a later step
            self.fail(exc)
            return
        self.collector = collector = StreamCollector(requests.request_id(number))
        self.in_flight = True
        after = None if self.trace is None else self.trace.subscribing()
        try:
            subscription = subscribe_now(
                source, self.on_next, self.on_error, self.on_completed, self.scheduler
            )
        finally:
            if after is not None:
                after()
        if self.ended:
            subscription.dispose()
        elif self.in_flight and self.collector is collector:
            # Kept only while this step is in flight: a synchronous source may have completed it
            # (and begun the next one) inside subscribe_now. A completed step's subscription is
            # dropped, which frees the step without the garbage collector (it refers to this run).
            self.step_subscription = subscription

    def on_next(self, event: Event) -> None:
        """An event of the step in flight: folded, and passed on when the filters keep it."""
        self.collector.apply(event)
        if self.plan.keep(event):
            self.observer.on_next(event)

    def on_error(self, error: Exception) -> None:
        """The step in flight failed: the chat fails with the same error."""
        self.in_flight, self.step_subscription = False, None
        self.fail(error)

    def on_completed(self) -> None:
        """The step in flight completed."""
        self.in_flight, self.step_subscription = False, None
        # The step may end on any thread (a sync Fake ends on the subscriber's): the rest of
        # the step runs on the runner's context, where every tool completion arrives too.
        if not self.ended:
            self.response = self.collector.to_response()
            self.runner.soon(self._run_tools)

    def _run_tools(self) -> None:
        if self.ended:
            return
        response = self.response
        calls = response.tool_calls
        self.outcomes = [None] * len(calls)
        self.waiting = len(calls)
        self.cancels = []
        if not calls:
            self._complete_step()
            return
        for index, call in enumerate(calls):
            if self.plan.options.mode == "manual":
                self.outcomes[index] = ToolOutcome(call=call, kind="pending")
                self.waiting -= 1
                continue
            checked = check_call(call, self.plan.toolbox)
            if isinstance(checked, ToolOutcome):
                outcome = checked
                if self.trace is not None and outcome.is_error:
                    self.trace.tool_started(call, None)(outcome)  # decided without a run: an instant
                self.runner.defer(lambda i=index, o=outcome: self._record(i, o))  # type: ignore[misc]
                continue
            tool, kwargs = checked
            timeout = tool.timeout if tool.timeout is not None else self.plan.options.tool_timeout
            end = None if self.trace is None else self.trace.tool_started(call, tool)
            self.cancels.append(self.runner.start(ToolRun(tool, kwargs, timeout, self._finisher(index, end))))
        if not self.waiting:
            self.runner.defer(self._complete_step)

    # -- tools ------------------------------------------------------------------------------
    def _finisher(self, index: int, end: Callable[[ToolOutcome], None] | None) -> Callable[[Finished], None]:
        def done(finished: Finished) -> None:
            if self.ended:
                return
            call = self.response.tool_calls[index]
            try:
                outcome = outcome_of(call, finished)
            except ValidationError as exc:
                self.fail(exc)
                return
            if end is not None:
                end(outcome)
            self._record(index, outcome)

        return done

    def _record(self, index: int, outcome: ToolOutcome) -> None:
        if self.ended:
            return
        self.outcomes[index] = outcome
        if outcome.kind != "pending" and not self._emit_all(tool_events(outcome)):
            return
        self.waiting -= 1
        if not self.waiting:
            self._complete_step()

    # -- step ends --------------------------------------------------------------------------
    def _complete_step(self) -> None:
        if self.ended:
            return
        outcomes = [o for o in self.outcomes if o is not None]
        sent = [
            Message(role="tool", content=o.content, tool_call_id=o.call.id, name=o.call.name)
            for o in outcomes
            if o.content is not None
        ]
        self.thread = self.thread.extended([self.response.message, *sent])
        step = StepResult(
            index=len(self.steps), response=self.response, tool_outcomes=outcomes, thread=self.thread
        )
        self.steps.append(step)
        event = StepCompleted(
            response=self.response, thread=self.thread, index=step.index, tool_outcomes=outcomes
        )
        if not self._emit_all([event]):
            return
        try:
            reason = halt_reason(step, self.plan.options, len(self.steps))
        except ValidationError as exc:
            self.fail(exc)
            return
        if reason is None:
            self.begin_step()
        else:
            self._finish(reason, [o.call for o in outcomes if o.kind == "pending"])

    def _finish(self, reason: str, pending: list[Any]) -> None:
        result = ChatResult(
            thread=self.thread,
            response=self.response,
            steps=self.steps,
            halted_reason=reason,
            pending_tool_calls=pending,
            usage=sum_usage(s.response.usage for s in self.steps),
            output_text=self.response.output_text,
        )
        if self._emit_all([ChatCompleted(result=result)]):
            self.ended = True
            self.observer.on_completed()

    def _emit_all(self, events: list[Event]) -> bool:
        """Emit orchestration events (``on_event`` first); False when the chat ended meanwhile."""
        on_event = self.plan.requests.on_event  # the steps' on_event sees these events too
        for event in events:
            if self.ended:
                return False
            if on_event is not None:
                try:
                    on_event(event)
                except Exception as exc:
                    self.fail(exc)
                    return False
            self.observer.on_next(event)
        return not self.ended

    def fail(self, error: Exception) -> None:
        """End the chat with ``on_error`` (running tools are cancelled)."""
        if self.ended:
            return
        self._stop()
        self.observer.on_error(error)

    def dispose(self) -> None:
        """The subscriber left: cancel the request in flight and the running tools."""
        self._stop()

    def _stop(self) -> None:
        self.ended = True
        subscription, self.step_subscription = self.step_subscription, None
        if subscription is not None:
            subscription.dispose()
        cancels, self.cancels = self.cancels, []
        for cancel in cancels:
            cancel()


def tool_events(outcome: ToolOutcome) -> list[Event]:
    """The three events of one finished call: started, completed, then encoded / ask_user / halt."""
    call = outcome.call
    events: list[Event] = [
        ToolExecutionStarted(id=call.id, name=call.name, arguments=call.arguments),
        ToolExecutionCompleted(id=call.id, name=call.name, result=outcome.result, is_error=outcome.is_error),
    ]
    if outcome.kind == "ask_user":
        events.append(
            AskUserRequested(
                tool_call_id=call.id, tool_name=call.name, question=outcome.question or "", opts=outcome.opts
            )
        )
    elif outcome.kind == "halt":
        events.append(ToolHalt(tool_call_id=call.id, reason=outcome.reason or "halt", result=outcome.result))
    else:
        events.append(ToolResultEncoded(id=call.id, content=outcome.content or ""))
    return events


def halt_reason(step: StepResult, options: ChatOptions, turns: int) -> str | None:
    """Why the chat stops after ``step`` (None: send the next request). Raises for a raising callback."""
    outcomes = step.tool_outcomes
    for outcome in outcomes:
        if outcome.kind == "halt":
            return outcome.reason
    kinds = {o.kind for o in outcomes}
    if "ask_user" in kinds:
        return "ask_user"
    if "error" in kinds and any(_halts_on_error(o, options) for o in outcomes if o.is_error):
        return "tool_error"
    if "pending" in kinds:
        return "manual_tool_calls"
    if not step.tool_calls:
        return "completed"
    if options.halt_when is not None:
        try:
            verdict = options.halt_when(step)
        except Exception as exc:
            raise callback_error("halt_when", exc) from None
        if verdict:
            return verdict if isinstance(verdict, str) else "halt_when"
    return "max_turns" if turns >= options.max_turns else None


def _halts_on_error(outcome: ToolOutcome, options: ChatOptions) -> bool:
    policy = options.on_tool_error
    if isinstance(policy, str):
        return policy == "halt"
    try:
        verdict = policy(outcome)
    except Exception as exc:
        raise callback_error("on_tool_error", exc) from None
    if verdict not in ("continue", "halt"):
        raise ValidationError(
            "invalid_request",
            f"on_tool_error returned {verdict!r}; expected 'continue' or 'halt'",
            errors=[("on_tool_error", "bad_verdict")],
        )
    return verdict == "halt"


__all__ = ["ChatPlan", "ChatRun", "ChatTrace", "halt_reason", "stream_chat", "tool_events"]
