"""Pre-flight: every check made before any I/O, and the resolution of one call.

:func:`prepare` resolves the request and the adapter options of a call (model,
parameters, timeouts, orchestration options stripped) and raises every problem
at once as a :class:`~rx_allm.errors.ValidationError`; :func:`validate_request`
checks a resolved request.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import secrets
from collections.abc import Iterator
from typing import Any, get_args

from rx_allm._sse import DEFAULT_MAX_EVENT_BYTES
from rx_allm.adapter import StreamOptions
from rx_allm.engine import Engine
from rx_allm.errors import EngineError, ValidationError
from rx_allm.models import Message, Request, Role
from rx_allm.schema import output_type
from rx_allm.strict import suggestion, unknown_names

logger = logging.getLogger("rx_allm")

#: Options removed by the runner (they belong to multi-turn orchestration).
ORCHESTRATION_OPTIONS = ("mode", "max_turns", "halt_when", "tool_timeout", "on_tool_error")
#: Call options that fill a :class:`Request` field when the request leaves it unset.
REQUEST_FIELD_OPTIONS = ("temperature", "max_tokens", "tool_choice", "response_format")
#: Call options the runner reads itself (besides the limits, the request fields and the
#: orchestration options), and the keyword arguments of ``stream_generate``.
CALL_OPTIONS = frozenset({"model", "request_id", "api_key", "adapter_opts", "extra_body"})
RUNNER_ARGUMENTS = frozenset({"on_event", "emit_text_deltas", "emit_tool_deltas", "include_raw_chunks"})

ROLES = frozenset(get_args(Role))
RESERVED_TOOL_NAMES = frozenset({"auto", "none", "required", "any"})
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RESPONSE_FORMAT_TYPES = frozenset({"text", "json_object", "json_schema"})


def validate_request(request: Request) -> None:
    """Raise :class:`ValidationError` (``invalid_request``) listing every problem found."""
    errors = message_problems(request.messages)
    if not request.messages:
        errors.append(("messages", "empty"))
    seen: set[str] = set()
    for i, tool in enumerate(request.tools):
        if not tool.name:
            errors.append((f"tools.{i}.name", "empty"))
        elif tool.name in RESERVED_TOOL_NAMES:
            errors.append((f"tools.{i}.name", "reserved_tool_name"))
        elif not _TOOL_NAME.match(tool.name):
            errors.append((f"tools.{i}.name", "invalid_format"))
        elif tool.name in seen:
            errors.append(("tools", "duplicate_name"))
        seen.add(tool.name)
    if request.temperature is not None and not 0.0 <= request.temperature <= 2.0:
        errors.append(("temperature", "out_of_range"))
    if request.max_tokens is not None and request.max_tokens <= 0:
        errors.append(("max_tokens", "must_be_positive"))
    if not _valid_response_format(request.response_format):
        errors.append(("response_format", "invalid_shape"))
    if errors:
        raise ValidationError("invalid_request", errors=errors)


def message_problems(messages: list[Message], start: int = 0) -> list[tuple[str, str]]:
    """``(path, reason)`` of each problem in ``messages[start:]`` (unknown role, tool message without id)."""
    errors: list[tuple[str, str]] = []
    for i in range(start, len(messages)):
        message = messages[i]
        if message.role not in ROLES:
            errors.append((f"messages.{i}.role", "unknown"))
        if message.role == "tool" and not message.tool_call_id:
            errors.append((f"messages.{i}.tool_call_id", "required"))
    return errors


def _valid_response_format(fmt: object) -> bool:
    if fmt is None or output_type(fmt) is not None:
        return True
    if isinstance(fmt, str):
        return fmt in ("text", "json_object")
    if not isinstance(fmt, dict) or fmt.get("type") not in _RESPONSE_FORMAT_TYPES:
        return False
    if fmt["type"] == "json_schema":
        schema = fmt.get("json_schema", fmt)
        return (
            isinstance(schema, dict) and isinstance(schema.get("schema"), dict) and bool(schema.get("name"))
        )
    return True


def prepare(engine: Engine, request: Request, options: dict[str, Any]) -> tuple[Request, StreamOptions]:
    """Resolve the request and the adapter options of one call (pre-flight, raising)."""
    params = {**engine.params, **options}
    if not params.keys().isdisjoint(ORCHESTRATION_OPTIONS):
        _strip_orchestration(params)
    call_model = params.pop("model", None)  # always popped: never forwarded as a provider param
    model = request.model or call_model or engine.model
    limits, problems = _limits(params)
    request_id = params.pop("request_id", None) or new_request_id()
    api_key = params.pop("api_key", None)
    adapter_opts = {**engine.adapter_opts, **(params.pop("adapter_opts", None) or {})}
    extra_body = params.pop("extra_body", None)

    updates: dict[str, Any] = {}
    if model != request.model:
        updates["model"] = model
    if not request.tools and engine.tools:
        updates["tools"] = engine.tools
    if isinstance(extra_body, dict) and extra_body:
        updates["options"] = {**extra_body, **request.options}
    elif extra_body is not None and not isinstance(extra_body, dict):
        problems.append(("extra_body", "must_be_a_dict"))
    if not params.keys().isdisjoint(REQUEST_FIELD_OPTIONS):
        for key in REQUEST_FIELD_OPTIONS:
            value = params.pop(key, None)
            if value is not None and getattr(request, key) is None:
                updates[key] = value
    resolved = request.model_copy(update=updates) if updates else request

    try:
        validate_request(resolved)
    except ValidationError as exc:
        problems = exc.errors + problems
    if problems:
        raise ValidationError("invalid_request", errors=problems)

    opts = StreamOptions(
        model=model,
        **limits,
        request_id=request_id,
        adapter_opts=adapter_opts,
        params=params,
        api_key=api_key,
        call_index=engine.next_call_index(),
    )
    return resolved, opts


def _strip_orchestration(params: dict[str, Any]) -> None:
    for key in ORCHESTRATION_OPTIONS:
        if key in params:
            del params[key]
            logger.debug(
                "stream_generate: removed orchestration option %r (not forwarded to the adapter)", key
            )


def check_names(adapter: object, opts: StreamOptions) -> None:
    """Refuse ``adapter_opts`` keys and provider parameters the adapter does not know.

    An adapter declares them as ``options`` and ``params`` (collections of names); one that
    declares neither is not checked. The error names the bad key and the nearest valid one.
    """
    name = getattr(adapter, "name", type(adapter).__name__)
    options = getattr(adapter, "options", None)
    if options is not None:
        for key in opts.adapter_opts:
            if key not in options:
                raise EngineError(
                    "invalid_engine",
                    f"adapter {name!r} has no adapter_opts key {key!r}; {suggestion(key, options)}",
                )
    params = getattr(adapter, "params", None)
    if params is not None:
        unknown = [key for key in opts.params if key not in params]
        if unknown:
            valid = {
                *params,
                *CALL_OPTIONS,
                *RUNNER_ARGUMENTS,
                *REQUEST_FIELD_OPTIONS,
                *LIMITS,
                *ORCHESTRATION_OPTIONS,
            }
            problems = [
                (key, f"{why} (pass provider parameters rx_allm does not model in extra_body)")
                for key, why in unknown_names(unknown, valid, "option")
            ]
            raise ValidationError("invalid_request", errors=problems)


def check_model(adapter: object, request: Request) -> None:
    """Raise ``EngineError("missing_model")`` when the adapter needs a model and none resolved."""
    if getattr(adapter, "requires_model", False) and not request.model:
        name = getattr(adapter, "name", type(adapter).__name__)
        raise EngineError(
            "missing_model", f"adapter {name!r} needs a model: set it on the request, call or engine"
        )


def new_request_id() -> str:
    """A fresh request id: 24 hex digits, a random per-process prefix and a counter.

    Unique across the processes of a machine (a forked child draws a new prefix) without a
    system call per request; an id correlates a request, it is not a secret.
    """
    return f"{_ids.prefix}{next(_ids.counter):08x}"


class _RequestIds:
    __slots__ = ("counter", "prefix")
    prefix: str
    counter: Iterator[int]

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        """A new random prefix and counter start (in a forked child too: no id repeats the parent's)."""
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count(secrets.randbits(31))


_ids = _RequestIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.renew)


#: The limits a call may set, and their defaults (``total_timeout``: no bound unless given).
LIMITS: dict[str, Any] = {
    "stream_timeout": 60.0,
    "request_timeout": 60.0,
    "total_timeout": None,
    "max_event_bytes": DEFAULT_MAX_EVENT_BYTES,
}


def _limits(params: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Pop the call's timeouts and ``max_event_bytes`` from ``params``: their values and problems."""
    if params.keys().isdisjoint(LIMITS):  # the common case: every limit at its (valid) default
        return dict(LIMITS), []
    values = {name: params.pop(name, default) for name, default in LIMITS.items()}
    problems: list[tuple[str, str]] = []
    for name, value in values.items():
        if name == "max_event_bytes":
            problem = None if _is_int(value) and value > 0 else "must_be_positive_int"
        elif value is None and name == "total_timeout":
            continue
        else:
            problem = _duration_problem(value)
            if problem is None:
                values[name] = float(value)
        if problem is not None:
            problems.append((name, problem))
    return values, problems


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _duration_problem(value: object) -> str | None:
    """Why ``value`` is not a duration in seconds (a finite positive number), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must_be_positive"
    if not math.isfinite(value):  # inf would never fire; nan compares false with every time
        return "must_be_finite"
    return None if value > 0 else "must_be_positive"


__all__ = [
    "CALL_OPTIONS",
    "ORCHESTRATION_OPTIONS",
    "REQUEST_FIELD_OPTIONS",
    "check_model",
    "check_names",
    "message_problems",
    "new_request_id",
    "prepare",
    "validate_request",
]
