"""OpenTelemetry: GenAI spans and metrics over the emulator, with the SDK's in-memory exporters."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec
from rx_allm.testing.recording import record

KEY = "sk-test-otel-secret-0123456789abcdef"
REQ = allm.request([allm.system("Be brief."), allm.user("Weather in Paris?")], max_tokens=50, temperature=0.2)


class Telemetry:
    """An SDK tracer provider with an in-memory exporter and a meter provider with an in-memory reader."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    @property
    def providers(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    yield Telemetry()
    allm.otel.uninstrument()


def children_of(parent: ReadableSpan, spans: list[ReadableSpan]) -> bool:
    """True when every span in ``spans`` is a direct child of ``parent`` (same trace)."""
    assert parent.context is not None and spans
    return all(
        s.parent is not None
        and s.parent.span_id == parent.context.span_id
        and s.context is not None
        and s.context.trace_id == parent.context.trace_id
        for s in spans
    )


def engine_for(emulator: ProviderEmulator, provider: str) -> allm.Engine:
    adapter, endpoint = ("openai", {"endpoint": "responses"}) if provider == "responses" else (provider, {})
    models = {"openai": "gpt-4o-mini", "responses": "gpt-4.1-mini", "anthropic": "claude-sonnet-4-5"}
    return allm.Engine(
        adapter=adapter,
        model=models.get(provider, "gemini-2.5-flash"),
        adapter_opts={"base_url": emulator.base_url(provider), "api_key": KEY, **endpoint},
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["openai", "responses", "anthropic", "gemini"])
async def test_instrument_records_a_genai_span_and_metrics_per_stream(
    emulator: ProviderEmulator, telemetry: Telemetry, provider: str
) -> None:
    emulator.enqueue(Reply(text="Rainy and mild today.", usage={"input_tokens": 12, "output_tokens": 8}))
    allm.otel.instrument(**telemetry.providers)
    engine = engine_for(emulator, provider)
    response = await allm.generate(engine, REQ)
    assert response.ok

    (span,) = telemetry.spans()
    attrs = dict(span.attributes or {})
    operation = "generate_content" if provider == "gemini" else "chat"
    assert span.name == f"{operation} {engine.model}" and span.kind is SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == operation
    assert attrs["gen_ai.provider.name"] == {"gemini": "gcp.gemini", "responses": "openai"}.get(
        provider, provider
    )
    assert attrs["gen_ai.request.model"] == engine.model
    assert (attrs["gen_ai.request.max_tokens"], attrs["gen_ai.request.temperature"]) == (50, 0.2)
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert isinstance(attrs["gen_ai.response.id"], str) and isinstance(attrs["gen_ai.response.model"], str)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (12, 8)
    assert attrs["server.address"] == "127.0.0.1" and isinstance(attrs["server.port"], int)
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert "error.type" not in attrs and span.status.status_code is StatusCode.UNSET
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs  # opt-in only

    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    (first,) = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    per_chunk = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.points("gen_ai.client.token.usage")}
    assert duration.count == 1 and first.count == 1 and 0 < first.sum <= duration.sum
    deltas = len(allm.testing.wire.split_text("Rainy and mild today."))
    assert sum(p.count for p in per_chunk) == deltas - 1  # every chunk after the first
    assert tokens == {"input": 12, "output": 8}
    assert duration.attributes["gen_ai.provider.name"] == attrs["gen_ai.provider.name"]


@pytest.mark.asyncio
async def test_an_error_sets_error_type_status_and_the_duration_attribute(
    emulator: ProviderEmulator, telemetry: Telemetry
) -> None:
    emulator.enqueue(Reply(status=429, headers={"Retry-After": "3"}))
    allm.otel.instrument(**telemetry.providers)
    response = await allm.generate(engine_for(emulator, "openai"), REQ)
    assert response.error is not None and response.error.reason == "rate_limited"
    (span,) = telemetry.spans()
    assert span.attributes is not None and span.attributes["error.type"] == "rate_limited"
    assert span.status.status_code is StatusCode.ERROR
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "rate_limited"
    assert telemetry.points("gen_ai.client.operation.time_to_first_chunk") == []
    assert telemetry.points("gen_ai.client.token.usage") == []  # not reported: nothing invented


@pytest.mark.asyncio
async def test_disposing_first_ends_the_span_as_cancelled(
    emulator: ProviderEmulator, telemetry: Telemetry
) -> None:
    emulator.enqueue(Reply(text="one two three", stall_after=3))
    allm.otel.instrument(**telemetry.providers)
    events = allm.stream_generate(engine_for(emulator, "openai"), REQ)
    async for event in allm.iterate(events):
        if isinstance(event, allm.TextDelta):
            break
    (span,) = telemetry.spans()
    assert span.attributes is not None and span.attributes["error.type"] == "cancelled"


@pytest.mark.asyncio
async def test_content_is_recorded_only_on_opt_in_and_a_key_never(
    emulator: ProviderEmulator, telemetry: Telemetry
) -> None:
    emulator.enqueue(Reply(text="Rainy."), Reply(status=401))
    allm.otel.instrument(capture_content=True, **telemetry.providers)
    engine = engine_for(emulator, "anthropic")
    await allm.generate(engine, REQ)
    await allm.generate(engine, REQ)  # a 401 whose body echoes the key
    ok, failed = telemetry.spans()
    attrs = dict(ok.attributes or {})
    assert json.loads(str(attrs["gen_ai.system_instructions"])) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(str(attrs["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
    ]
    assert json.loads(str(attrs["gen_ai.output.messages"])) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Rainy."}], "finish_reason": "stop"}
    ]
    everything = repr([(s.name, s.attributes, s.status.description, s.events) for s in (ok, failed)])
    everything += repr(telemetry.reader.get_metrics_data())
    assert KEY not in everything and KEY[:16] not in everything


def test_traced_on_the_fake_records_tool_calls_and_the_given_names(telemetry: Telemetry) -> None:
    script = [
        ("tool_call_delta", {"id": "c1", "arguments_delta": '{"city": '}),
        ("tool_call_delta", {"id": "c1", "arguments_delta": '"Paris"}'}),
        ("tool_call", {"id": "c1", "name": "weather", "arguments": {"city": "Paris"}}),
        ("usage", {"input_tokens": 5, "output_tokens": 3, "cached_input_tokens": 2}),
        ("finish", "tool_calls"),
    ]
    engine = allm.Engine(adapter="fake", adapter_opts={"script": script})
    traced = allm.otel.traced(provider="fake", model="scripted", capture_content=True, **telemetry.providers)
    last = allm.stream_generate(engine, REQ).pipe(traced).run()
    assert isinstance(last, allm.MessageCompleted)
    (span,) = telemetry.spans()
    attrs = dict(span.attributes or {})
    assert span.name == "chat scripted"
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    output = json.loads(str(attrs["gen_ai.output.messages"]))
    assert output[0]["parts"] == [
        {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Paris"}}
    ]
    assert "gen_ai.input.messages" not in attrs  # traced() without a request has no prompt to record
    assert sum(p.count for p in telemetry.points("gen_ai.client.operation.time_per_output_chunk")) == 2


def test_uninstrument_stops_tracing_new_streams(telemetry: Telemetry) -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", "hi"), ("finish", "stop")]})
    allm.otel.instrument(**telemetry.providers)
    assert allm.otel.instrumented()
    allm.generate_sync(engine, REQ)
    allm.otel.uninstrument()
    allm.generate_sync(engine, REQ)
    assert not allm.otel.instrumented()
    assert len(telemetry.spans()) == 1


@pytest.mark.asyncio
async def test_a_retry_gives_one_span_per_attempt(emulator: ProviderEmulator, telemetry: Telemetry) -> None:
    emulator.enqueue(Reply(status=503), Reply(text="ok"))
    allm.otel.instrument(**telemetry.providers)
    events = allm.stream_generate(engine_for(emulator, "openai"), REQ).pipe(allm.retry(base_delay=0.01))
    rec = await record(events)
    assert rec.completed
    assert [(s.attributes or {}).get("error.type") for s in telemetry.spans()] == [
        "provider_unavailable",
        None,
    ]


def test_without_opentelemetry_installed_rx_allm_imports_and_otel_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import rx_allm as allm\n"
        "e = allm.Engine(adapter='fake', adapter_opts={'script': [('text', 'hi'), ('finish', 'stop')]})\n"
        "assert allm.generate_sync(e, allm.request([allm.user('x')])).output_text == 'hi'\n"
        "try:\n    allm.otel.instrument()\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'rx_allm[otel]'" in result.stdout


def test_traced_chat_records_a_chat_span_with_a_span_per_step(telemetry: Telemetry) -> None:
    @allm.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    engine = allm.Engine(
        adapter="fake",
        adapter_opts={
            "scripts": [
                [
                    ("tool_call", {"id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}),
                    ("usage", {"input_tokens": 10, "output_tokens": 4}),
                    ("finish", "tool_calls"),
                ],
                [("text", "5"), ("usage", {"input_tokens": 20, "output_tokens": 1}), ("finish", "stop")],
            ]
        },
    )
    traced = allm.otel.traced_chat(name="adder", provider="fake", tracer_provider=telemetry.tracer_provider)
    last = allm.stream_chat(engine, "2 + 3?", tools=[add]).pipe(traced).run()
    assert last.type == "chat_completed"

    spans = {span.name: span for span in telemetry.spans()}
    assert sorted(spans) == ["execute_tool add", "invoke_agent adder", "step 0", "step 1"]
    chat, first, second = spans["invoke_agent adder"], spans["step 0"], spans["step 1"]
    assert children_of(chat, [first, second, spans["execute_tool add"]])
    assert dict(first.attributes or {})["rx_allm.step.tool_calls"] == ("add",)
    assert dict(first.attributes or {})["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert dict(second.attributes or {})["gen_ai.usage.input_tokens"] == 20
    chat_attrs = dict(chat.attributes or {})
    assert chat_attrs["gen_ai.operation.name"] == "invoke_agent"
    assert chat_attrs["rx_allm.chat.halted_reason"] == "completed"
    assert (chat_attrs["rx_allm.chat.steps"], chat_attrs["gen_ai.usage.input_tokens"]) == (2, 30)
    assert first.start_time <= chat.end_time and second.end_time <= chat.end_time


def test_traced_chat_ends_with_the_error_type_on_the_open_step(telemetry: Telemetry) -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"scripts": [[("error", "rate_limited")]]})
    traced = allm.otel.traced_chat(tracer_provider=telemetry.tracer_provider)
    with pytest.raises(allm.AdapterError):
        allm.stream_chat(engine, "hi").pipe(traced).run()
    spans = {span.name: span for span in telemetry.spans()}
    assert sorted(spans) == ["invoke_agent", "step 0"]
    assert all((s.attributes or {}).get("error.type") == "rate_limited" for s in spans.values())
    assert spans["invoke_agent"].status.status_code is StatusCode.ERROR


def test_instrument_traces_chats_too(telemetry: Telemetry) -> None:
    @allm.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    scripts = [
        [("tool_call", {"id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}), ("finish", "tool_calls")],
        [("text", "5"), ("finish", "stop")],
    ]
    engine = allm.Engine(adapter="fake", adapter_opts={"scripts": scripts}, model="scripted")
    allm.otel.instrument(**telemetry.providers)
    result = allm.chat_sync(engine, "2 + 3?", tools=[add])
    assert result.output_text == "5"
    names = sorted(span.name for span in telemetry.spans())
    assert names == ["chat scripted", "chat scripted", "execute_tool add", "invoke_agent", "step 0", "step 1"]
    (agent,) = [s for s in telemetry.spans() if s.name == "invoke_agent"]
    assert children_of(agent, [s for s in telemetry.spans() if s is not agent])
    assert dict(agent.attributes or {})["gen_ai.provider.name"] == "fake"
    assert dict(agent.attributes or {})["gen_ai.request.model"] == "scripted"
    allm.otel.uninstrument()
    allm.chat_sync(allm.Engine(adapter="fake", adapter_opts={"scripts": scripts}), "2 + 3?", tools=[add])
    assert len(telemetry.spans()) == 6  # nothing more once uninstrumented


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def tool_reply(*calls: tuple[str, dict[str, Any]]) -> Reply:
    specs = [ToolCallSpec(name, args, id=f"call_{i}") for i, (name, args) in enumerate(calls)]
    return Reply(text="", tool_calls=specs, finish="tool_calls")


@pytest.mark.asyncio
async def test_a_tool_run_span_covers_the_run_and_model_spans_sit_under_the_chat(
    emulator: ProviderEmulator, telemetry: Telemetry
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    ran: dict[str, int] = {}

    @allm.tool
    async def forecast(city: str) -> str:
        """Tomorrow's weather in a city."""
        ran["start"] = time.time_ns()
        started.set()
        await release.wait()
        ran["end"] = time.time_ns()
        return f"rainy in {city}"

    emulator.enqueue(tool_reply(("forecast", {"city": "Paris"})), Reply(text="Rainy."))
    allm.otel.instrument(**telemetry.providers)
    engine = engine_for(emulator, "openai")
    chat = asyncio.create_task(allm.chat(engine, "Weather in Paris?", tools=[forecast]))
    await started.wait()
    assert named(telemetry.spans(), "execute_tool forecast") == []  # still running: not ended early
    release.set()
    result = await chat
    assert result.output_text == "Rainy."

    spans = telemetry.spans()
    (agent,) = named(spans, "invoke_agent")
    (tool,) = named(spans, "execute_tool forecast")
    models = named(spans, f"chat {engine.model}")
    assert len(models) == 2 and children_of(agent, [*models, tool])
    assert tool.start_time is not None and tool.end_time is not None
    assert tool.start_time <= ran["start"] and ran["end"] <= tool.end_time
    assert models[0].end_time is not None and models[0].end_time <= tool.start_time
    assert models[1].start_time is not None and tool.end_time <= models[1].start_time
    assert tool.kind is SpanKind.INTERNAL and tool.status.status_code is StatusCode.UNSET
    attrs = dict(tool.attributes or {})
    assert attrs == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "forecast",
        "gen_ai.tool.call.id": "call_0",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "Tomorrow's weather in a city.",
        "rx_allm.tool.outcome": "result",
    }  # no arguments or result without capture_content


def test_error_outcomes_give_error_spans_with_their_reason(telemetry: Telemetry) -> None:
    @allm.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @allm.tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("the tool broke")

    @allm.tool(timeout=0.05)
    async def stuck() -> str:
        """Never finishes."""
        await asyncio.Event().wait()
        return "never"

    calls = [
        ("nope", {}),
        ("add", {"a": "two", "b": 3}),
        ("explode", {}),
        ("stuck", {}),
        ("add", {"a": 1, "b": 2}),
    ]
    step = [("tool_call", {"id": f"c{i}", "name": n, "arguments": a}) for i, (n, a) in enumerate(calls)]
    scripts = [[*step, ("finish", "tool_calls")], [("text", "done"), ("finish", "stop")]]
    engine = allm.Engine(adapter="fake", adapter_opts={"scripts": scripts}, model="scripted")
    allm.otel.instrument(**telemetry.providers)
    result = allm.chat_sync(engine, "go", tools=[add, explode, stuck])
    assert result.halted_reason == "completed"

    tools = {
        dict(s.attributes or {})["gen_ai.tool.call.id"]: s
        for s in telemetry.spans()
        if s.name.startswith("execute_tool")
    }
    reasons = {call_id: dict(s.attributes or {}).get("error.type") for call_id, s in tools.items()}
    assert reasons == {
        "c0": "unknown_tool",
        "c1": "invalid_arguments",
        "c2": "tool_exception",
        "c3": "tool_timeout",
        "c4": None,
    }
    for call_id, span in tools.items():
        expected = StatusCode.UNSET if call_id == "c4" else StatusCode.ERROR
        assert span.status.status_code is expected
        assert span.status.description is None  # an error's message is content: opt-in only
    assert tools["c3"].end_time is not None and tools["c3"].start_time is not None
    assert tools["c3"].end_time - tools["c3"].start_time >= 40_000_000  # ended by the timeout


@pytest.mark.asyncio
async def test_tool_content_only_on_opt_in_and_no_key_anywhere(
    emulator: ProviderEmulator, telemetry: Telemetry
) -> None:
    @allm.tool
    def forecast(city: str) -> dict[str, str]:
        """Tomorrow's weather in a city."""
        return {"city": city, "sky": "rain"}

    @allm.tool
    def leak() -> str:
        """Fails with the key in its message."""
        raise RuntimeError(f"auth failed for {KEY}")

    emulator.enqueue(tool_reply(("forecast", {"city": "Paris"}), ("leak", {})), Reply(status=401))
    allm.otel.instrument(capture_content=True, **telemetry.providers)
    result = await allm.chat(engine_for(emulator, "anthropic"), "Weather?", tools=[forecast, leak])
    assert result.error is not None and result.error.reason == "authentication_failed"  # echoes the key

    spans = telemetry.spans()
    (ok,) = named(spans, "execute_tool forecast")
    (failed,) = named(spans, "execute_tool leak")
    attrs = dict(ok.attributes or {})
    assert json.loads(str(attrs["gen_ai.tool.call.arguments"])) == {"city": "Paris"}
    assert json.loads(str(attrs["gen_ai.tool.call.result"])) == {"city": "Paris", "sky": "rain"}
    assert "gen_ai.tool.call.result" not in (failed.attributes or {})
    assert failed.status.description is not None and "auth failed for" in failed.status.description
    everything = repr([(s.name, s.attributes, s.status.description, s.events) for s in spans])
    assert KEY not in everything and KEY[:16] not in everything
    assert named(spans, "invoke_agent")[0].status.status_code is StatusCode.ERROR


@pytest.mark.asyncio
async def test_disposing_a_chat_ends_its_running_tool_span_as_cancelled(telemetry: Telemetry) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    @allm.tool
    async def wait_forever() -> str:
        """Waits until cancelled."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    scripts = [
        [("tool_call", {"id": "c1", "name": "wait_forever", "arguments": {}}), ("finish", "tool_calls")]
    ]
    engine = allm.Engine(adapter="fake", adapter_opts={"scripts": scripts}, model="scripted")
    traced = allm.otel.traced_chat(tracer_provider=telemetry.tracer_provider)
    subscription = allm.stream_chat(engine, "go", tools=[wait_forever]).pipe(traced).subscribe()
    await started.wait()
    assert named(telemetry.spans(), "execute_tool wait_forever") == []
    subscription.dispose()

    spans = telemetry.spans()
    (tool,) = named(spans, "execute_tool wait_forever")
    (agent,) = named(spans, "invoke_agent")
    assert dict(tool.attributes or {})["error.type"] == "cancelled"
    assert dict(agent.attributes or {})["error.type"] == "cancelled"
    assert children_of(agent, [tool])
    for _ in range(10):  # the cancellation reaches the tool's task within a few turns of the loop
        if cancelled:
            break
        await asyncio.sleep(0)
    assert cancelled == [True]
