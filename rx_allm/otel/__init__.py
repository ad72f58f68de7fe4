"""OpenTelemetry GenAI spans and metrics for streaming calls (the ``otel`` extra).

``instrument()`` traces every ``stream_generate`` (so every ``generate``) and every
``stream_chat`` from then on; ``traced(...)`` and ``traced_chat(...)`` trace one stream
you compose yourself::

    allm.otel.instrument()                                     # global providers
    events.pipe(allm.otel.traced(provider="openai", model="gpt-4.1-mini"))

Each subscription is one CLIENT span named ``"{operation} {model}"`` with the GenAI
semantic-convention attributes (``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.*``, ``gen_ai.response.model``/``id``/``finish_reasons``,
``gen_ai.usage.*``, ``gen_ai.response.time_to_first_chunk``, ``error.type``) and four
histograms: ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``,
``gen_ai.client.operation.time_to_first_chunk`` and
``gen_ai.client.operation.time_per_output_chunk``. Prompts and completions are recorded
only with ``capture_content=True``; keys never are. A chat is one INTERNAL
``invoke_agent`` span with its model requests, ``step {n}`` spans and one
``execute_tool {tool}`` span per tool run under it. Without ``opentelemetry-api``
installed this module still imports; only calling these functions needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from rx_allm import runner
from rx_allm.adapter import StreamOptions
from rx_allm.engine import Engine
from rx_allm.events import Event
from rx_allm.models import Request
from rx_allm.otel._chat import ChatRecording, chat_attributes
from rx_allm.otel._recording import OPERATION_NAMES, PROVIDER_NAMES, CallInfo, Recording, Telemetry

__all__ = [
    "OPERATION_NAMES",
    "PROVIDER_NAMES",
    "instrument",
    "instrumented",
    "traced",
    "traced_chat",
    "uninstrument",
]


def _telemetry(tracer_provider: Any, meter_provider: Any) -> Telemetry:
    try:
        return Telemetry(tracer_provider, meter_provider)
    except ImportError as exc:
        raise ImportError(
            "rx_allm.otel needs opentelemetry-api: install the extra with `pip install 'rx_allm[otel]'`"
        ) from exc


def traced(
    *,
    provider: str | None = None,
    model: str | None = None,
    request: Request | None = None,
    base_url: str | None = None,
    capture_content: bool = False,
    tracer_provider: Any = None,
    meter_provider: Any = None,
) -> Callable[[Observable[Event]], Observable[Event]]:
    """An operator recording one span and the GenAI metrics per subscription, events unchanged.

    ``provider`` is the adapter's name (``"openai"``, ``"anthropic"``, ``"gemini"``...),
    ``model`` the requested model, ``request`` gives the request parameters (and the
    prompt, with ``capture_content``), ``base_url`` the server address. The span starts
    at subscription and ends at the stream's end: ``error.type`` is the error's reason
    (or class name), and ``"cancelled"`` when the subscriber disposed first. Providers
    default to the global ones (``opentelemetry.trace`` / ``metrics``).
    """
    telemetry = _telemetry(tracer_provider, meter_provider)
    call = CallInfo(provider, model, request, base_url, capture_content)
    return lambda source: _traced(source, lambda: Recording(telemetry, call))


def traced_chat(
    *,
    name: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    capture_content: bool = False,
    tracer_provider: Any = None,
) -> Callable[[Observable[Event]], Observable[Event]]:
    """An operator recording a ``stream_chat``: an ``invoke_agent`` span and child spans.

    Each ``step {n}`` span runs from the step's first event to its ``step_completed`` and
    carries its finish reason, usage and the names of the tools it called; the chat span
    gets ``rx_allm.chat.halted_reason``, the step count and the summed usage. ``name``
    becomes ``gen_ai.agent.name``. Applied directly to ``stream_chat``'s Observable, each
    tool run gets an ``execute_tool {tool}`` span from its start to its outcome (arguments
    and result only with ``capture_content``), and the model requests, which
    :func:`instrument` records, are children of the chat span.
    """
    tracer = _telemetry(tracer_provider, None).tracer
    attributes = chat_attributes(name, provider, model)
    return lambda source: _traced_chat(source, lambda: ChatRecording(tracer, attributes, capture_content))


class _Recorder(Protocol):
    def on_event(self, event: Event) -> None: ...

    def end(self, error: BaseException | None = None, error_type: str | None = None) -> None: ...


_R = TypeVar("_R", bound=_Recorder)


def _traced_chat(source: Observable[Event], start: Callable[[], ChatRecording]) -> Observable[Event]:
    """``_traced`` for a chat: a ``stream_chat`` Observable also reports its steps and tool runs."""
    from rx_allm.orchestration.loop import ChatObservable

    if not isinstance(source, ChatObservable):
        return _traced(source, start)
    return _traced(source, start, source.traced)


def _traced(
    source: Observable[Event],
    start: Callable[[], _R],
    bind: Callable[[_R], Observable[Event]] | None = None,
) -> Observable[Event]:
    """Record each subscription with a fresh recorder; ``bind`` gives the source bound to it."""

    def subscribe(
        observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        recording = start()

        def on_next(event: Event) -> None:
            recording.on_event(event)
            observer.on_next(event)

        def on_error(error: Exception) -> None:
            recording.end(error)
            observer.on_error(error)

        def on_completed() -> None:
            recording.end()
            observer.on_completed()

        bound = source if bind is None else bind(recording)
        upstream = bound.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
        return CompositeDisposable(upstream, Disposable(lambda: recording.end(error_type="cancelled")))

    return Observable(subscribe)


def instrument(
    *, capture_content: bool = False, tracer_provider: Any = None, meter_provider: Any = None
) -> None:
    """Trace every ``stream_generate`` and ``stream_chat`` from now on (replacing an earlier call).

    A model request gets the span and metrics of :func:`traced` (provider, model, request
    and server address from the call), wrapped around the adapter's stream before the
    runner's filters, so it sees every chunk. A chat gets the spans of :func:`traced_chat`
    (with ``capture_content`` too): its model requests are children of its span.
    """
    from rx_allm.orchestration import loop as chat_loop

    telemetry = _telemetry(tracer_provider, meter_provider)

    def hook(
        source: Observable[Event], adapter: Any, request: Request, opts: StreamOptions
    ) -> Observable[Event]:
        base_url = opts.adapter_opts.get("base_url")
        call = CallInfo(
            provider=getattr(adapter, "name", None),
            model=opts.model,
            request=request,
            base_url=base_url if isinstance(base_url, str) else None,
            capture_content=capture_content,
        )
        return _traced(source, lambda: Recording(telemetry, call))

    def chat_hook(source: Observable[Event], engine: Engine, options: dict[str, Any]) -> Observable[Event]:
        provider = getattr(engine.resolve_adapter(), "name", None)
        attributes = chat_attributes(None, provider, options.get("model") or engine.model)
        return _traced_chat(source, lambda: ChatRecording(telemetry.tracer, attributes, capture_content))

    runner.stream_hook = hook
    chat_loop.chat_hook = chat_hook


def uninstrument() -> None:
    """Stop tracing new calls and chats (streams already traced keep their spans)."""
    from rx_allm.orchestration import loop as chat_loop

    runner.stream_hook = None
    chat_loop.chat_hook = None


def instrumented() -> bool:
    """True while :func:`instrument` is in effect."""
    return runner.stream_hook is not None
