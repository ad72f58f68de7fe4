"""Running one generation: ``stream_generate`` and the folds over it.

``stream_generate`` runs the pre-flight (raising before any I/O, see
:mod:`rx_allm.preflight`), calls ``adapter.stream`` and composes exactly
``ops.do_action(on_event)`` and ``ops.filter(keep)`` on the adapter's Observable —
no second wrapper, so disposal and errors propagate unchanged. (After
:func:`rx_allm.otel.instrument`, and only then, the adapter's Observable is first
wrapped by the tracing operator, which passes everything through.)

``on_event`` sees every adapter event, before the filters. It runs inside the
subscriber's delivery; the runner does not catch its exceptions: one raised by
``on_event`` arrives as the stream's ``on_error`` and disposes the subscription,
which cancels the upstream request.

``generate`` is ``stream_generate`` folded by :class:`~rx_allm.collector.StreamCollector`
(``collect`` subscribes and folds any event Observable); ``generate_sync`` is the same
for code without a running event loop.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from reactivex import Observable
from reactivex import operators as ops

from rx_allm._loop import block_until, call_on_loop, refuse_blocking
from rx_allm._subscribe import subscribe_now
from rx_allm.adapter import StreamOptions
from rx_allm.collector import StreamCollector
from rx_allm.engine import Engine
from rx_allm.events import Event
from rx_allm.models import Request, Response
from rx_allm.preflight import check_model, check_names, new_request_id, prepare
from rx_allm.schema import output_type

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
    default 60), ``total_timeout`` (seconds, default none), ``max_event_bytes``
    (default 32 MiB), ``request_id``, ``api_key``, ``adapter_opts`` (merged over the
    engine's), ``extra_body`` (provider fields rx_allm does not model, merged into the
    body last), and any provider parameter the adapter models (``temperature``,
    ``max_tokens``, ...), which wins over ``engine.params``; an unknown name is a
    ``ValidationError`` naming the nearest valid one. Raises :class:`EngineError`,
    :class:`ValidationError` or the adapter's pre-flight ``AdapterError``.
    """
    adapter = engine.resolve_adapter()
    resolved, opts = prepare(engine, request, options)
    check_names(adapter, opts)
    check_model(adapter, resolved)
    source = open_stream(adapter, resolved, opts, on_event)
    return _filter_operator(event_filter(emit_text_deltas, emit_tool_deltas, include_raw_chunks))(source)


def open_stream(
    adapter: Any, request: Request, opts: StreamOptions, on_event: OnEvent | None
) -> Observable[Event]:
    """A resolved call's adapter Observable with ``do_action(on_event)``: a generation before the filters.

    Raises the adapter's pre-flight errors. (The chat loop streams its steps through this
    too and applies the emit/include rules itself.)
    """
    source: Observable[Event] = adapter.stream(request, opts)
    if stream_hook is not None:
        source = stream_hook(source, adapter, request, opts)
    # ``op(source)`` is ``source.pipe(op)`` without pipe's per-call import and reduce (a few µs a call).
    if on_event is not None:
        source = ops.do_action(on_event)(source)
    return source


#: ``ops.filter(keep)`` built once per predicate (the predicates are cached too): the operator is stateless.
_filter_operator = functools.cache(ops.filter)


def event_filter(
    emit_text_deltas: bool, emit_tool_deltas: bool, include_raw_chunks: bool
) -> Callable[[Event], bool]:
    """The ``keep`` predicate of the three emit/include rules (usage raw chunks always pass)."""
    return _keep(bool(emit_text_deltas), bool(emit_tool_deltas), bool(include_raw_chunks))


@functools.cache
def _keep(text_deltas: bool, tool_deltas: bool, raw_chunks: bool) -> Callable[[Event], bool]:
    # One predicate per combination of the three flags, built once.
    dropped = frozenset(
        name for name, drop in (("text_delta", not text_deltas), ("tool_call_delta", not tool_deltas)) if drop
    )
    if raw_chunks:
        return lambda event: event.type not in dropped

    def keep(event: Event) -> bool:
        kind = event.type
        if kind == "raw_chunk":
            return event.kind == "usage"  # type: ignore[union-attr]
        return kind not in dropped

    return keep


async def collect(events: Observable[Event], collector: StreamCollector | None = None) -> Response:
    """Subscribe to ``events`` and fold them; cancelling the awaiting task disposes the subscription."""
    collector = collector or StreamCollector()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] | None = None
    finished = False

    def wake() -> None:
        if future is not None and not future.done():
            future.set_result(None)

    def done(error: Exception | None = None) -> None:
        nonlocal finished
        if error is not None:
            collector.fail(error)
        finished = True
        if future is not None:
            call_on_loop(loop, wake)

    subscription = subscribe_now(events, collector.apply, done, done)
    if not finished:
        future = loop.create_future()
        if finished:  # completed on another thread in between
            wake()
        try:
            await future
        except asyncio.CancelledError:
            subscription.dispose()
            raise
    return collector.to_response()


def requested_output(engine: Engine, request: Request, options: dict[str, Any]) -> type[BaseModel] | None:
    """The pydantic class asked for as ``response_format`` (request, else call option, else engine param)."""
    fmt = request.response_format or options.get("response_format") or engine.params.get("response_format")
    return output_type(fmt)


async def generate(engine: Engine, request: Request, **options: Any) -> Response:
    """Run one generation and return its :class:`Response` (pre-flight errors raise)."""
    options.setdefault("request_id", new_request_id())
    collector = StreamCollector(options["request_id"], requested_output(engine, request, options))
    return await collect(stream_generate(engine, request, **options), collector)


def generate_sync(engine: Engine, request: Request, **options: Any) -> Response:
    """:func:`generate` for synchronous code (HTTP runs on the library's background loop)."""
    refuse_blocking("generate_sync()")
    options.setdefault("request_id", new_request_id())
    collector = StreamCollector(options["request_id"], requested_output(engine, request, options))
    finished = threading.Event()

    def fail(error: Exception) -> None:
        collector.fail(error)
        finished.set()

    subscription = stream_generate(engine, request, **options).subscribe(
        on_next=collector.apply, on_error=fail, on_completed=finished.set
    )
    block_until(finished, subscription)
    return collector.to_response()


__all__ = ["collect", "event_filter", "generate", "generate_sync", "open_stream", "stream_generate"]
