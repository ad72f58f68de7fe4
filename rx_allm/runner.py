"""``stream_generate``: pre-flight, resolution, and the two operators on top of the adapter.

The runner validates synchronously (raising before any I/O), resolves the model
and parameters, strips orchestration options, calls ``adapter.stream`` and
composes exactly ``ops.do_action(on_event)`` and ``ops.filter(keep)`` on the
adapter's Observable — no second wrapper, so disposal and errors propagate
unchanged. (After :func:`rx_allm.otel.instrument`, and only then, the adapter's
Observable is first wrapped by the tracing operator, which passes everything through.)

``on_event`` sees every adapter event, before the filters. It runs inside the
subscriber's delivery; the runner does not catch its exceptions: one raised by
``on_event`` arrives as the stream's ``on_error`` and disposes the subscription,
which cancels the upstream request.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from reactivex import Observable
from reactivex import operators as ops

from rx_allm.adapter import StreamOptions
from rx_allm.engine import Engine
from rx_allm.errors import EngineError, ValidationError
from rx_allm.events import Event
from rx_allm.models import Request
from rx_allm.validation import validate_request

logger = logging.getLogger("rx_allm")

#: Options removed by the runner (they belong to multi-turn orchestration).
ORCHESTRATION_OPTIONS = ("mode", "max_turns", "halt_when")
#: Call options that fill a :class:`Request` field when the request leaves it unset.
REQUEST_FIELD_OPTIONS = ("temperature", "max_tokens", "tool_choice", "response_format")

OnEvent = Callable[[Event], Any]
StreamHook = Callable[[Observable[Event], Any, Request, StreamOptions], Observable[Event]]

#: Wraps each adapter Observable when set (by :func:`rx_allm.otel.instrument`); None costs nothing.
stream_hook: StreamHook | None = None


def stream_generate(
    engine: Engine,
    request: Request,
    *,
    on_event: OnEvent | None = None,
    emit_text_deltas: bool = True,
    emit_tool_deltas: bool = True,
    include_raw_chunks: bool = False,
    **options: Any,
) -> Observable[Event]:
    """A cold Observable of the events of one generation.

    Call options: ``model``, ``stream_timeout`` and ``request_timeout`` (seconds,
    default 60), ``request_id``, ``api_key``, ``adapter_opts`` (merged over the
    engine's), and any provider parameter (``temperature``, ``max_tokens``, ...),
    which wins over ``engine.params``. Raises :class:`EngineError`,
    :class:`ValidationError` or the adapter's pre-flight ``AdapterError``.
    """
    adapter = engine.resolve_adapter()
    resolved, opts = prepare(engine, request, options)
    if getattr(adapter, "requires_model", False) and not resolved.model:
        name = getattr(adapter, "name", type(adapter).__name__)
        raise EngineError(
            "missing_model", f"adapter {name!r} needs a model: set it on the request, call or engine"
        )
    source = adapter.stream(resolved, opts)
    if stream_hook is not None:
        source = stream_hook(source, adapter, resolved, opts)
    # ``op(source)`` is ``source.pipe(op)`` without pipe's per-call import and reduce (a few µs a call).
    if on_event is not None:
        source = ops.do_action(on_event)(source)
    return ops.filter(event_filter(emit_text_deltas, emit_tool_deltas, include_raw_chunks))(source)


def prepare(engine: Engine, request: Request, options: dict[str, Any]) -> tuple[Request, StreamOptions]:
    """Resolve the request and the adapter options of one call (pre-flight, raising)."""
    params = {**engine.params, **options}
    for key in ORCHESTRATION_OPTIONS:
        if key in params:
            del params[key]
            logger.debug(
                "stream_generate: removed orchestration option %r (not forwarded to the adapter)", key
            )
    call_model = params.pop("model", None)  # always popped: never forwarded as a provider param
    model = request.model or call_model or engine.model
    stream_timeout = params.pop("stream_timeout", 60.0)
    request_timeout = params.pop("request_timeout", 60.0)
    request_id = params.pop("request_id", None) or new_request_id()
    api_key = params.pop("api_key", None)
    adapter_opts = {**engine.adapter_opts, **(params.pop("adapter_opts", None) or {})}

    updates: dict[str, Any] = {}
    if model != request.model:
        updates["model"] = model
    if not request.tools and engine.tools:
        updates["tools"] = engine.tools
    for key in REQUEST_FIELD_OPTIONS:
        value = params.pop(key, None)
        if value is not None and getattr(request, key) is None:
            updates[key] = value
    resolved = request.model_copy(update=updates) if updates else request

    problems = [
        (name, "must_be_positive")
        for name, value in (("stream_timeout", stream_timeout), ("request_timeout", request_timeout))
        if not _positive_number(value)
    ]
    try:
        validate_request(resolved)
    except ValidationError as exc:
        problems = exc.errors + problems
    if problems:
        raise ValidationError("invalid_request", errors=problems)

    opts = StreamOptions(
        model=model,
        stream_timeout=float(stream_timeout),
        request_timeout=float(request_timeout),
        request_id=request_id,
        adapter_opts=adapter_opts,
        params=params,
        api_key=api_key,
        call_index=engine.next_call_index(),
    )
    return resolved, opts


def new_request_id() -> str:
    """A fresh random request id."""
    return secrets.token_hex(12)


def _positive_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def event_filter(
    emit_text_deltas: bool, emit_tool_deltas: bool, include_raw_chunks: bool
) -> Callable[[Event], bool]:
    """The ``keep`` predicate of the three emit/include rules (usage raw chunks always pass)."""
    dropped = frozenset(
        name
        for name, drop in (("text_delta", not emit_text_deltas), ("tool_call_delta", not emit_tool_deltas))
        if drop
    )
    if include_raw_chunks:
        return lambda event: event.type not in dropped

    def keep(event: Event) -> bool:
        kind = event.type
        if kind == "raw_chunk":
            return event.kind == "usage"  # type: ignore[union-attr]
        return kind not in dropped

    return keep
