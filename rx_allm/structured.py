"""Structured output while it streams: partial objects and partial tool arguments.

``partial_output(Model)`` turns a stream of events into ``Model`` instances validated
from the text received so far, then the final, fully validated instance::

    events.pipe(allm.partial_output(Weather)).subscribe(on_next=render)

``partial_arguments()`` turns ``tool_call_delta`` events into
:class:`PartialArguments` (the argument dict parsed so far, per tool call id).

Both parse with pydantic's own partial JSON support (``pydantic_core.from_json`` and
``TypeAdapter.validate_json`` with ``allow_partial`` / ``experimental_allow_partial``
set to ``"trailing-strings"``): a string still being written is shown as far as it
goes; an unfinished ``true``/``null``, key or number such as ``1.`` is left out. Two
rules keep the sequence a refinement, every item extending the one before:

* a number at the very end of the text may still grow (``2`` → ``21``), so no item is
  emitted while the text ends in one: it appears once a following character ends it;
* a text that does not validate yet (a required field not yet present, a nested
  item missing its required fields) emits nothing; the next text that validates does.

As a last guard, an item whose JSON does not extend the previous item's is skipped.
An item equal to the previous one is not emitted again. Each ``message_started``
starts over (a chat's tool steps and its final answer are separate messages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_core import from_json
from reactivex import Observable, abc

from rx_allm.errors import ValidationError
from rx_allm.events import (
    Event,
    MessageCompleted,
    MessageStarted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)

T = TypeVar("T")

_NUMBER_END = frozenset("0123456789.eE+-")
_NOTHING: Any = object()  # no value (yet)
_PROBES = ("1", ".1", "e1")  # one of them changes any number still being written


class PartialArguments(BaseModel):
    """The arguments of one tool call as parsed so far; ``complete`` on the final one."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    complete: bool = False


def parse_partial_json(text: str) -> Any:
    """The JSON value of ``text`` so far, or None while nothing can be shown.

    ``None`` too while the text ends in a number that may still grow. A JSON
    ``null`` document also gives None: callers look for containers.
    """
    value = _partial_value(text)
    return None if value is _NOTHING else value


def _partial_value(text: str) -> Any:
    """The JSON value of ``text`` so far; ``_NOTHING`` when unparseable or ending in a growing number."""
    if _number_may_grow(text):
        return _NOTHING
    try:
        return from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return _NOTHING


def refines(earlier: Any, later: Any) -> bool:
    """True when the partial JSON value ``later`` extends ``earlier`` (a parse of a shorter text).

    Only the last member at each level can still change between two parses of a growing
    text (the members before it are complete), so only that path is walked: keys and
    items may only be added, the last one must itself be extended, a string may only
    grow, anything else must stay equal. This is the guard that keeps the partials a
    refinement whatever the parser does with a text cut inside an escape sequence
    (pydantic-core before 2.41 drops such a string for one delta).
    """
    if isinstance(earlier, dict):
        if not isinstance(later, dict) or len(later) < len(earlier):
            return False
        last = next(reversed(earlier), None)
        return last is None or (last in later and refines(earlier[last], later[last]))
    if isinstance(earlier, list):
        if not isinstance(later, list) or len(later) < len(earlier):
            return False
        return not earlier or refines(earlier[-1], later[len(earlier) - 1])
    if isinstance(earlier, str):
        return isinstance(later, str) and later.startswith(earlier)
    return type(earlier) is type(later) and earlier == later


def _number_may_grow(text: str) -> bool:
    """True when one more character could change the number the text ends in.

    Decided by pydantic's parser, not by scanning: appending a digit (or a
    fraction) changes the parse exactly when the text ends in an unfinished
    number outside any string (strings still being written are left out of
    the ``allow_partial=True`` parses compared here).
    """
    if not text or text[-1] not in _NUMBER_END:
        return False
    try:
        settled = from_json(text, allow_partial=True)
    except ValueError:
        return False
    for probe in _PROBES:
        try:
            if from_json(text + probe, allow_partial=True) != settled:
                return True
        except ValueError:
            continue
    return False


def partial_output(
    model: type[T] | Any,
) -> Callable[[Observable[Any]], Observable[T]]:
    """Progressively validated ``model`` instances from a stream's text, then the final one.

    ``model`` is a pydantic model class or any type a ``TypeAdapter`` accepts
    (``list[Item]``, ``dict[str, Any]``...). While text arrives, every text that
    validates partially gives a new instance (see the module docstring for what
    is held back). When the stream completes, the text of its last message
    (``message_completed``'s message, else the text received) is validated
    strictly and the instance emitted last, even when equal to the previous
    partial. A text that does not validate ends the stream with
    ``ValidationError("invalid_output")`` whose ``errors`` name each failing
    field (``("address.city", "missing")``). An upstream error passes through
    unchanged; events other than text and message boundaries are ignored.
    """
    adapter: TypeAdapter[T] = TypeAdapter(model)
    name = getattr(model, "__name__", str(model))
    return _per_subscription(lambda observer: _OutputState(adapter, name, observer))


class _State(Protocol):
    def on_next(self, event: Event) -> None: ...

    def on_completed(self) -> None: ...


def _per_subscription(
    make: Callable[[abc.ObserverBase[Any]], _State],
) -> Callable[[Observable[Any]], Observable[Any]]:
    """An operator feeding the events of each subscription to a fresh state made by ``make``."""

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            state = make(observer)
            return source.subscribe(
                on_next=state.on_next,
                on_error=observer.on_error,
                on_completed=state.on_completed,
                scheduler=scheduler,
            )

        return Observable(subscribe)

    return operator


class _OutputState(Generic[T]):
    """One subscription of :func:`partial_output`: the current message's text."""

    def __init__(self, adapter: TypeAdapter[T], name: str, observer: abc.ObserverBase[T]) -> None:
        self.adapter = adapter
        self.name = name
        self.observer = observer
        self.blocks: list[str] = []  # completed text blocks of the current message
        self.current = ""
        self.final_text: str | None = None
        self.last: Any = _NOTHING
        self.last_raw: Any = _NOTHING  # the JSON value the last item was validated from

    def on_next(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.current += event.delta
            self._emit_partial()
        elif isinstance(event, TextCompleted):
            self.blocks.append(event.text)
            self.current = ""
        elif isinstance(event, MessageCompleted):
            self.final_text = event.message.text or None
        elif isinstance(event, MessageStarted):
            self.blocks, self.current, self.final_text = [], "", None
            self.last = self.last_raw = _NOTHING

    def _emit_partial(self) -> None:
        text = "".join(self.blocks) + self.current
        raw = _partial_value(text)
        if raw is _NOTHING or (self.last_raw is not _NOTHING and not refines(self.last_raw, raw)):
            return
        try:
            value = self.adapter.validate_json(text, experimental_allow_partial="trailing-strings")
        except pydantic.ValidationError:
            return
        if value != self.last:
            self.last, self.last_raw = value, raw
            self.observer.on_next(value)

    def on_completed(self) -> None:
        text = self.final_text if self.final_text is not None else "".join(self.blocks) + self.current
        try:
            value = self.adapter.validate_json(text)
        except pydantic.ValidationError as exc:
            self.observer.on_error(output_error(exc, self.name))
            return
        self.observer.on_next(value)
        self.observer.on_completed()


def output_error(exc: pydantic.ValidationError, name: str) -> ValidationError:
    """``ValidationError("invalid_output")`` naming each failing field of ``exc`` (by dotted path)."""
    errors = [(".".join(str(p) for p in e["loc"]) or name, e["type"]) for e in exc.errors()]
    listed = "; ".join(f"{path}: {why}" for path, why in errors)
    return ValidationError(
        "invalid_output",
        f"the model's output is not a valid {name}: {listed}",
        errors=errors,
        metadata={"output_type": name},
    )


def partial_arguments() -> Callable[[Observable[Any]], Observable[PartialArguments]]:
    """:class:`PartialArguments` per tool call as its ``tool_call_delta`` events arrive.

    Each delta that changes what its call's JSON parses to (an object) gives the
    arguments so far; ``tool_call_completed`` gives the final arguments with
    ``complete=True``. Calls are told apart by id, so interleaved calls work.
    Errors and completion pass through; other events are ignored.
    """
    return _per_subscription(_ArgumentsState)


class _ArgumentsState:
    """One subscription of :func:`partial_arguments`: raw JSON and last parse per call id."""

    def __init__(self, observer: abc.ObserverBase[PartialArguments]) -> None:
        self.observer = observer
        self.on_completed = observer.on_completed
        self.names: dict[str, str] = {}
        self.raw: dict[str, str] = {}
        self.last: dict[str, dict[str, Any]] = {}

    def on_next(self, event: Event) -> None:
        if isinstance(event, ToolCallDelta):
            raw = self.raw[event.id] = self.raw.get(event.id, "") + event.arguments_delta
            value = parse_partial_json(raw)
            last = self.last.get(event.id, {})
            if isinstance(value, dict) and value != last and refines(last, value):
                self.last[event.id] = value
                self.observer.on_next(
                    PartialArguments(id=event.id, name=self.names.get(event.id), arguments=value)
                )
        elif isinstance(event, ToolCallStarted):
            self.names[event.id] = event.name
        elif isinstance(event, ToolCallCompleted):
            self.observer.on_next(
                PartialArguments(id=event.id, name=event.name, arguments=event.arguments, complete=True)
            )
        elif isinstance(event, MessageStarted):
            self.names.clear()
            self.raw.clear()
            self.last.clear()


__all__ = [
    "PartialArguments",
    "output_error",
    "parse_partial_json",
    "partial_arguments",
    "partial_output",
    "refines",
]
