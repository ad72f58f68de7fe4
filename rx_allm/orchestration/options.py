"""The chat options and their pre-flight checks (raised before any I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

from rx_allm.conversation import StepResult, ToolOutcome
from rx_allm.engine import Engine
from rx_allm.errors import ValidationError

DEFAULT_MAX_TURNS = 8
DEFAULT_TOOL_TIMEOUT = 30.0
Mode = Literal["auto", "manual"]
#: ``halt_when(step)`` → True / a reason string to halt, False / None to go on.
HaltWhen = Callable[[StepResult], Union[bool, str, None]]  # noqa: UP007
#: ``on_tool_error(outcome)`` → ``"continue"`` or ``"halt"``.
ToolErrorPolicy = Union[Literal["continue", "halt"], Callable[[ToolOutcome], str]]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """The validated orchestration options of one chat."""

    mode: Mode = "auto"
    max_turns: int = DEFAULT_MAX_TURNS
    halt_when: HaltWhen | None = None
    tool_timeout: float | None = DEFAULT_TOOL_TIMEOUT
    on_tool_error: ToolErrorPolicy = "continue"


def chat_options(engine: Engine, call: dict[str, Any]) -> ChatOptions:
    """Pop the orchestration options from ``call`` (engine params are defaults) and check them."""
    defaults = engine.params
    if call.keys().isdisjoint(_NAMES) and defaults.keys().isdisjoint(_NAMES):
        return _DEFAULTS
    values = {
        name: call.pop(name) if name in call else defaults.get(name, default)
        for name, default in _DEFAULT_VALUES.items()
    }
    errors: list[tuple[str, str]] = []
    if values["mode"] not in ("auto", "manual"):
        errors.append(("mode", "must_be_auto_or_manual"))
    turns = values["max_turns"]
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
        errors.append(("max_turns", "must_be_positive_int"))
    if values["halt_when"] is not None and not callable(values["halt_when"]):
        errors.append(("halt_when", "not_callable"))
    timeout = values["tool_timeout"]
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        errors.append(("tool_timeout", "must_be_positive"))
    policy = values["on_tool_error"]
    if policy not in ("continue", "halt") and not callable(policy):
        errors.append(("on_tool_error", "must_be_continue_halt_or_callable"))
    if errors:
        raise ValidationError("invalid_request", errors=errors)
    return ChatOptions(**values)


_DEFAULTS = ChatOptions()
_DEFAULT_VALUES = {name: getattr(_DEFAULTS, name) for name in ChatOptions.__slots__}
_NAMES = frozenset(_DEFAULT_VALUES)


def callback_error(name: str, exc: Exception) -> ValidationError:
    """The typed error a raising chat callback (``halt_when``, ``on_tool_error``) ends the chat with."""
    return ValidationError(
        "invalid_request", f"{name} raised {type(exc).__name__}: {exc}", errors=[(name, "raised")], cause=exc
    )


__all__ = ["ChatOptions", "HaltWhen", "Mode", "ToolErrorPolicy", "callback_error", "chat_options"]
