"""The scripted Fake adapter: no network, the request is ignored, the script decides.

Script entries are tuples (lists after a JSON round trip):

* ``("text", s)`` (alias ``("text_delta", s)``) → ``text_delta``
* ``("tool_call", {"id", "name", "arguments"[, "raw_arguments", "metadata"]})`` → started + completed
* ``("tool_call_delta", {"id", "arguments_delta"})`` → ``tool_call_delta``
* ``("usage", {Usage fields})`` → the usage ``raw_chunk`` emitted before ``message_completed``
* ``("raw_chunk", kind, data)`` → ``raw_chunk``
* ``("reasoning", text_or_fields)`` → ``raw_chunk(kind="reasoning_delta")`` and ``reasoning_completed``;
  the :class:`~rx_allm.models.Reasoning` (``provider="fake"`` unless the fields name one) lands in
  ``Message.reasoning``
* ``("refusal", text)`` → ``raw_chunk(kind="refusal_delta")``; ``Message.refusal`` holds the text and
  the message finishes with ``content_filter``
* ``("finish", reason)`` → closes the stream (later entries are never read)
* ``("error", reason_or_payload)`` → terminal ``on_error(AdapterError)`` (a dict payload gives its fields;
  an unknown reason becomes ``AdapterError("unknown", cause=payload)``)
* ``("delay", seconds)`` → waits, on the subscription's scheduler (virtual time under ``TestScheduler``)
* harness: ``("preflight_error", reason, opts)`` (first entry: ``stream`` raises ``AdapterError``),
  ``("error_event", reason, opts)`` → ``on_error(AdapterError)``,
  ``("stream_error", reason, opts)`` → ``on_error(StreamError)``

Text entries form one text block (id ``text_1``, ``text_2``, ...) closed by one
``text_completed`` before a tool call, reasoning or refusal entry, or at the finish (delays,
usage and raw chunks do not end a block); a stream closes with the usage chunk (if any
usage), then ``message_completed``. ``message_started`` and ``message_completed`` carry
``META_PROVIDER`` (``"fake"``) and, once finished, ``META_NATIVE_FINISH_REASON`` like every
adapter (the Fake has no provider response id).

``adapter_opts``: ``script`` (replayed on every call) or ``scripts`` (one list per call,
cursor per engine), ``usage`` (wins over
script usage), ``cleanup_observer`` (called once per subscription with
``"completed"``, ``"error"`` or ``"disposed"``), ``record`` (a list receiving
``(request, opts)`` per call).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Union, cast, get_args

from pydantic_core import PydanticSerializationError, to_json
from reactivex import Observable, abc

from rx_allm._loop import default_scheduler
from rx_allm._subscribe import subscribe_now
from rx_allm.adapter import StreamOptions
from rx_allm.errors import AdapterError, EngineError, RxAllmError, StreamError
from rx_allm.events import (
    META_NATIVE_FINISH_REASON,
    META_PROVIDER,
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    reasoning_completed,
    reasoning_delta,
    refusal_delta,
    usage_chunk,
)
from rx_allm.models import FinishReason, Message, Reasoning, Request, ToolCall, Usage
from rx_allm.providers._names import ALL_PARAMS, FAKE_OPTIONS

_CACHE_SIZE = 512
_FINISH_REASONS = frozenset(get_args(FinishReason))


@dataclass(frozen=True, slots=True)
class _Delay:
    seconds: float


@dataclass(frozen=True, slots=True)
class _Fail:
    make: Callable[[], RxAllmError]


_Step = Union[Event, _Delay, _Fail]  # noqa: UP007 (Event is an Annotated union)


class Fake:
    """Scripted adapter for tests, demos and marble diagrams (see the module docstring)."""

    name = "fake"
    requires_model = False
    options = FAKE_OPTIONS
    params = ALL_PARAMS  # the Fake ignores them, but refuses the typos a real adapter would

    def __init__(self) -> None:
        self._compiled: dict[bytes | str, list[_Step]] = {}

    def stream(self, request: Request, opts: StreamOptions) -> Observable[Event]:
        """Compile this call's script and return a cold Observable replaying it per subscription."""
        aopts = opts.adapter_opts
        script = _select_script(aopts, opts.call_index)
        record = aopts.get("record")
        if isinstance(record, list):
            record.append((request, opts))
        return _Replay(self._compile(script, aopts.get("usage")), aopts.get("cleanup_observer"))

    def _compile(self, script: Sequence[Any], usage: Any) -> list[_Step]:
        # Compiled steps are immutable, so they are cached by the script's content (a script
        # changed in place compiles anew): its JSON text, or its printed form when not JSON.
        key = _content_key((script, usage))
        steps = self._compiled.get(key)
        if steps is None:
            if len(self._compiled) >= _CACHE_SIZE:
                self._compiled.clear()
            steps = self._compiled[key] = compile_script(script, usage)
        return steps


def _content_key(value: Any) -> bytes | str:
    # JSON text keeps types apart (1, 1.0, true, "1", NaN) and is about twice as fast as repr.
    try:
        return to_json(value, inf_nan_mode="constants", fallback=repr)
    except (PydanticSerializationError, ValueError):  # lone surrogates, undecodable bytes
        return repr(value)


def _select_script(aopts: Any, call_index: int) -> Sequence[Any]:
    if "script" in aopts and "scripts" in aopts:
        raise EngineError("invalid_engine", "fake adapter: give either `script` or `scripts`, not both")
    if "script" in aopts:
        script = aopts["script"]
    elif "scripts" in aopts:
        scripts = aopts["scripts"]
        if not isinstance(scripts, (list, tuple)) or not all(isinstance(s, (list, tuple)) for s in scripts):
            raise EngineError("invalid_engine", "fake adapter: `scripts` must be a list of scripts (lists)")
        if call_index >= len(scripts):
            raise AdapterError(
                "no_scripted_response",
                f"no scripted response: call {call_index + 1} but only {len(scripts)} script(s)",
                provider="fake",
            )
        script = scripts[call_index]
    else:
        raise AdapterError(
            "no_scripted_response", "no scripted response: set `script` or `scripts`", provider="fake"
        )
    if not isinstance(script, (list, tuple)):
        raise EngineError("invalid_engine", "fake adapter: a script must be a list of entries")
    return script


class _Compiled:
    """The steps compiled so far, and what the closing events need."""

    __slots__ = (
        "block",
        "blocks",
        "calls",
        "end",
        "finish",
        "reasoning",
        "refusal",
        "steps",
        "text",
        "usage",
    )

    def __init__(self) -> None:
        self.steps: list[_Step] = [MessageStarted(metadata={META_PROVIDER: "fake"})]
        self.text: list[str] = []
        self.block: list[str] = []  # the open text block's fragments
        self.blocks = 0  # text blocks opened
        self.calls: dict[str, ToolCall] = {}
        self.reasoning: list[Reasoning] = []
        self.refusal: str | None = None
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None
        self.end: Literal["finish", "error"] | None = None  # a finish or error entry ends the script

    def close_text(self) -> None:
        """End the open text block with its ``text_completed``."""
        if self.block:
            self.steps.append(TextCompleted(id=f"text_{self.blocks}", text="".join(self.block)))
            self.block = []

    def close(self, forced_usage: Any) -> list[_Step]:
        """The steps with the closing events: ``text_completed``, the usage chunk, ``message_completed``."""
        if self.end == "error":
            return self.steps
        usage = _usage(forced_usage) if forced_usage is not None else self.usage
        self.close_text()
        if usage is not None:
            self.steps.append(usage_chunk(usage))
        message = Message(
            role="assistant",
            content="".join(self.text),
            tool_calls=list(self.calls.values()),
            reasoning=self.reasoning,
            refusal=self.refusal,
        )
        metadata: dict[str, Any] = {META_PROVIDER: "fake"}
        if self.finish is not None:
            metadata[META_NATIVE_FINISH_REASON] = self.finish
        finish = "content_filter" if self.refusal is not None else self.finish
        self.steps.append(MessageCompleted(message=message, finish_reason=finish, metadata=metadata))
        return self.steps


def _compile_text(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    (value,) = args
    if not isinstance(value, str):
        raise ValueError("text must be a string")
    if value:
        if not compiled.block:
            compiled.blocks += 1
        compiled.block.append(value)
        compiled.text.append(value)
        compiled.steps.append(TextDelta(id=f"text_{compiled.blocks}", delta=value))


def _compile_reasoning(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    compiled.close_text()
    fields = {"text": args[0]} if isinstance(args[0], str) else dict(args[0])
    reasoning = Reasoning.model_validate({"provider": "fake", **fields})
    block_id = f"reasoning_{len(compiled.reasoning) + 1}"
    if reasoning.text:
        compiled.steps.append(reasoning_delta(block_id, reasoning.text))
    compiled.steps.append(reasoning_completed(block_id, reasoning))
    compiled.reasoning.append(reasoning)


def _compile_refusal(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    (text,) = args
    compiled.close_text()
    compiled.refusal = (compiled.refusal or "") + str(text)
    if text:
        compiled.steps.append(refusal_delta(str(text)))


def _compile_tool_call(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    compiled.close_text()
    call = _tool_call(args[0])
    compiled.calls[call.id] = call
    compiled.steps += [ToolCallStarted(id=call.id, name=call.name), ToolCallCompleted.from_call(call)]


def _compile_tool_call_delta(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    spec = dict(args[0])
    compiled.steps.append(ToolCallDelta(id=str(spec["id"]), arguments_delta=str(spec["arguments_delta"])))


def _compile_usage(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    compiled.usage = _usage(args[0])


def _compile_raw_chunk(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    compiled.steps.append(RawChunk(kind=str(args[0]), data=args[1] if len(args) > 1 else None))


def _compile_delay(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    (seconds,) = args
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError("delay must be a non-negative number of seconds")
    compiled.steps.append(_Delay(float(seconds)))


def _compile_finish(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    finish = args[0] if args else "stop"
    if finish is not None and finish not in _FINISH_REASONS:
        raise ValueError(f"unknown finish reason {finish!r}")
    compiled.finish = cast("FinishReason | None", finish)
    compiled.end = "finish"


def _compile_error(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    compiled.steps.append(_Fail(partial(_scripted_error, args[0])))
    compiled.end = "error"


def _compile_error_event(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    _fail_with(compiled, _adapter_error, args)


def _compile_stream_error(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    _fail_with(compiled, _stream_error, args)


def _fail_with(compiled: _Compiled, make: Callable[[Any, Any], RxAllmError], args: tuple[Any, ...]) -> None:
    reason, extra = args[0], (args[1] if len(args) > 1 else None)
    make(reason, extra)  # validate now
    compiled.steps.append(_Fail(partial(make, reason, extra)))
    compiled.end = "error"


def _compile_preflight_error(compiled: _Compiled, args: tuple[Any, ...]) -> None:
    raise _adapter_error(args[0], args[1] if len(args) > 1 else None)


#: Script tag → its compiler (one entry's steps; ``finish`` and the errors end the script).
_COMPILERS: dict[str, Callable[[_Compiled, tuple[Any, ...]], None]] = {
    "text": _compile_text,
    "text_delta": _compile_text,
    "tool_call": _compile_tool_call,
    "tool_call_delta": _compile_tool_call_delta,
    "usage": _compile_usage,
    "raw_chunk": _compile_raw_chunk,
    "reasoning": _compile_reasoning,
    "refusal": _compile_refusal,
    "delay": _compile_delay,
    "finish": _compile_finish,
    "error": _compile_error,
    "error_event": _compile_error_event,
    "stream_error": _compile_stream_error,
    "preflight_error": _compile_preflight_error,
}


def compile_script(script: Sequence[Any], forced_usage: Any = None) -> list[_Step]:
    """Turn script entries into the steps one subscription replays (raises for a bad script)."""
    compiled = _Compiled()
    for index, entry in enumerate(script):
        try:
            tag, args = _split(entry)
            compiler = _COMPILERS.get(tag)
            if compiler is None:
                raise ValueError(f"unknown tag {tag!r}")
            if tag == "preflight_error" and index:
                raise ValueError("preflight_error must be the first entry")
            compiler(compiled, args)
        except AdapterError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise EngineError("invalid_engine", f"fake script entry {index} {entry!r}: {exc}") from None
        if compiled.end is not None:
            break
    return compiled.close(forced_usage)


def _split(entry: Any) -> tuple[str, tuple[Any, ...]]:
    if not isinstance(entry, (list, tuple)) or not entry or not isinstance(entry[0], str):
        raise ValueError("an entry is a tuple whose first item is its tag")
    return entry[0], tuple(entry[1:])


def _tool_call(spec: Any) -> ToolCall:
    spec = dict(spec)
    arguments = spec.get("arguments") or {}
    raw = spec.get("raw_arguments")
    if raw is None:
        raw = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(
        id=str(spec["id"]),
        name=str(spec["name"]),
        arguments=arguments,
        raw_arguments=raw,
        metadata=spec.get("metadata") or {},
    )


def _usage(value: Any) -> Usage:
    return value if isinstance(value, Usage) else Usage.model_validate(value)


def _error_fields(extra: Any) -> dict[str, Any]:
    return dict(extra or {})


def _adapter_error(reason: Any, extra: Any) -> AdapterError:
    fields = {"provider": "fake", **_error_fields(extra)}
    return AdapterError(reason, **fields)


def _stream_error(reason: Any, extra: Any) -> StreamError:
    return StreamError(reason, **{"provider": "fake", **_error_fields(extra)})


def _scripted_error(payload: Any) -> AdapterError:
    if isinstance(payload, str) and payload in AdapterError.reasons:
        return AdapterError(payload, provider="fake")
    if isinstance(payload, dict) and payload.get("reason") in AdapterError.reasons:
        return AdapterError(**{"provider": "fake", **payload})
    return AdapterError("unknown", "scripted error", provider="fake", cause=payload)


class _Replay(Observable[Event]):
    """The cold Observable of a compiled script: each subscription walks the steps anew."""

    def __init__(self, steps: list[_Step], cleanup: Callable[[str], Any] | None) -> None:
        super().__init__()
        self._steps = steps
        self._cleanup = cleanup

    def subscribe(
        self,
        on_next: Any = None,
        on_error: abc.OnError | None = None,
        on_completed: abc.OnCompleted | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """``Observable.subscribe`` minus the trampoline: the replay never schedules on the current thread."""
        if hasattr(on_next, "on_next"):  # an observer
            on_next, on_error, on_completed = on_next.on_next, on_next.on_error, on_next.on_completed
        return subscribe_now(self, on_next, on_error, on_completed, scheduler)

    def _subscribe_core(
        self, observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _Run(self._steps, observer, scheduler, self._cleanup)
        run.resume(0)
        return run


class _Run(abc.DisposableBase):
    """One subscription's walk through the steps; disposing it stops the walk."""

    __slots__ = ("cleanup", "ended", "observer", "pending", "scheduler", "steps")

    def __init__(
        self,
        steps: list[_Step],
        observer: abc.ObserverBase[Event],
        scheduler: abc.SchedulerBase | None,
        cleanup: Callable[[str], Any] | None,
    ) -> None:
        self.steps = steps
        self.observer = observer
        self.scheduler = scheduler
        self.cleanup = cleanup
        self.ended = False
        self.pending: abc.DisposableBase | None = None

    def resume(self, start: int) -> None:
        observer = self.observer
        steps = self.steps
        for index in range(start, len(steps)):
            if self.ended:
                return
            step = steps[index]
            if isinstance(step, _Delay):
                scheduler = self.scheduler or default_scheduler()
                self.pending = scheduler.schedule_relative(step.seconds, self._wake, index + 1)
                return
            if isinstance(step, _Fail):
                self._end("error")
                observer.on_error(step.make())
                return
            try:
                observer.on_next(step)
            except Exception as exc:  # a subscriber raised: its exception ends the stream for every sink
                if not self.ended:
                    self._end("error")
                    observer.on_error(exc)
                return
        if not self.ended:
            self._end("completed")
            observer.on_completed()

    def _wake(self, _scheduler: abc.SchedulerBase, index: int | None) -> None:
        self.resume(index or 0)

    def _end(self, how: str) -> None:
        self.ended = True
        if self.cleanup is not None:
            self.cleanup(how)

    def dispose(self) -> None:
        if self.pending is not None:
            self.pending.dispose()
        if not self.ended:
            self._end("disposed")


__all__ = ["Fake", "compile_script"]
