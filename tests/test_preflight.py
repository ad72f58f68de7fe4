"""Pre-flight of ``stream_generate``: synchronous typed errors, model/params resolution, error data."""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any

import pytest
import reactivex

import rx_allm as allm
from rx_allm.adapter import StreamOptions
from rx_allm.errors import AdapterError, EngineError, RxAllmError, StreamError, ValidationError
from rx_allm.events import MessageCompleted, MessageStarted
from rx_allm.models import Message, Request

USER = allm.user("hello")


class Probe:
    """Records what a Fake engine's adapter saw: calls (``record``) and subscriptions (``cleanup``)."""

    def __init__(self, script: list[Any] | None = None, **engine: Any) -> None:
        self.record: list[tuple[Request, StreamOptions]] = []
        self.cleanup: list[str] = []
        opts = {
            "script": script or [("text", "ok"), ("finish", "stop")],
            "record": self.record,
            "cleanup_observer": self.cleanup.append,
        }
        self.engine = allm.Engine(adapter="fake", adapter_opts=opts, **engine)

    def untouched(self) -> bool:
        return self.record == [] and self.cleanup == []


def invalid(probe: Probe, request: Request, **options: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        allm.stream_generate(probe.engine, request, **options)
    assert info.value.reason == "invalid_request"
    assert probe.untouched(), "pre-flight must raise before the adapter is called or subscribed"
    return info.value.errors


# -- ValidationError cases -------------------------------------------------------------
def test_no_messages() -> None:
    assert invalid(Probe(), allm.request([])) == [("messages", "empty")]


def test_unknown_role() -> None:
    request = allm.request([USER, Message(role="robot", content="beep")])
    assert invalid(Probe(), request) == [("messages.1.role", "unknown")]


def test_tool_message_without_tool_call_id() -> None:
    request = allm.request([USER, Message(role="tool", content="42")])
    assert invalid(Probe(), request) == [("messages.1.tool_call_id", "required")]


def test_tool_message_with_tool_call_id_passes() -> None:
    probe = Probe()
    request = allm.request(
        [
            USER,
            allm.assistant("", tool_calls=[allm.ToolCall(id="c1", name="f")]),
            allm.tool_result("c1", {"v": 42}),
        ]
    )
    allm.stream_generate(probe.engine, request)
    assert len(probe.record) == 1


@pytest.mark.parametrize("name", ["has space", "x" * 65, "dot.ted", "é", "semi;colon"])
def test_bad_tool_name(name: str) -> None:
    request = allm.request([USER], tools=[allm.tool(name=name)])
    assert invalid(Probe(), request) == [("tools.0.name", "invalid_format")]


@pytest.mark.parametrize("name", ["a", "A-z_09", "x" * 64])
def test_good_tool_names_pass(name: str) -> None:
    probe = Probe()
    allm.stream_generate(probe.engine, allm.request([USER], tools=[allm.tool(name=name)]))
    assert probe.record[0][0].tools[0].name == name


def test_empty_tool_name() -> None:
    assert invalid(Probe(), allm.request([USER], tools=[allm.tool(name="")])) == [("tools.0.name", "empty")]


@pytest.mark.parametrize("name", ["auto", "none", "required", "any"])
def test_reserved_tool_names(name: str) -> None:
    request = allm.request([USER], tools=[allm.tool(name="ok"), allm.tool(name=name)])
    assert invalid(Probe(), request) == [("tools.1.name", "reserved_tool_name")]


def test_duplicate_tool_names() -> None:
    request = allm.request([USER], tools=[allm.tool(name="f"), allm.tool(name="g"), allm.tool(name="f")])
    assert invalid(Probe(), request) == [("tools", "duplicate_name")]


def test_engine_tools_are_validated_too() -> None:
    probe = Probe(tools=[allm.tool(name="auto")])
    assert invalid(probe, allm.request([USER])) == [("tools.0.name", "reserved_tool_name")]


@pytest.mark.parametrize("temperature", [-0.1, 2.01, 5])
def test_temperature_out_of_range_on_the_request(temperature: float) -> None:
    request = allm.request([USER], temperature=temperature)
    assert invalid(Probe(), request) == [("temperature", "out_of_range")]


@pytest.mark.parametrize("temperature", [-1, 2.5])
def test_temperature_out_of_range_as_call_option(temperature: float) -> None:
    assert invalid(Probe(), allm.request([USER]), temperature=temperature) == [
        ("temperature", "out_of_range")
    ]


@pytest.mark.parametrize("temperature", [0, 0.0, 1.3, 2, 2.0])
def test_temperature_bounds_are_inclusive(temperature: float) -> None:
    probe = Probe()
    allm.stream_generate(probe.engine, allm.request([USER]), temperature=temperature)
    assert probe.record[0][0].temperature == temperature
    assert "temperature" not in probe.record[0][1].params


@pytest.mark.parametrize("max_tokens", [0, -1])
def test_non_positive_max_tokens(max_tokens: int) -> None:
    assert invalid(Probe(), allm.request([USER], max_tokens=max_tokens)) == [
        ("max_tokens", "must_be_positive")
    ]
    assert invalid(Probe(), allm.request([USER]), max_tokens=max_tokens) == [
        ("max_tokens", "must_be_positive")
    ]


@pytest.mark.parametrize(
    "fmt",
    [
        "xml",
        {"type": "yaml"},
        {"no_type": True},
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"name": "x"}},
        {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    ],
)
def test_bad_response_format(fmt: Any) -> None:
    assert invalid(Probe(), allm.request([USER], response_format=fmt)) == [
        ("response_format", "invalid_shape")
    ]


@pytest.mark.parametrize(
    "fmt",
    [
        "text",
        "json_object",
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    ],
)
def test_good_response_format_passes(fmt: Any) -> None:
    probe = Probe()
    allm.stream_generate(probe.engine, allm.request([USER], response_format=fmt))
    assert probe.record[0][0].response_format == fmt


@pytest.mark.parametrize("timeout", [0, -1, "10", True, None])
def test_non_positive_stream_timeout(timeout: Any) -> None:
    assert invalid(Probe(), allm.request([USER]), stream_timeout=timeout) == [
        ("stream_timeout", "must_be_positive")
    ]


def test_request_timeout_validated_too() -> None:
    assert invalid(Probe(), allm.request([USER]), request_timeout=0) == [
        ("request_timeout", "must_be_positive")
    ]


def test_several_problems_reported_together() -> None:
    request = allm.request(
        [Message(role="robot"), Message(role="tool", content="x")],
        tools=[allm.tool(name="bad name"), allm.tool(name="none")],
        temperature=3.0,
        max_tokens=0,
        response_format="xml",
    )
    errors = invalid(Probe(), request, stream_timeout=-5)
    assert set(errors) == {
        ("messages.0.role", "unknown"),
        ("messages.1.tool_call_id", "required"),
        ("tools.0.name", "invalid_format"),
        ("tools.1.name", "reserved_tool_name"),
        ("temperature", "out_of_range"),
        ("max_tokens", "must_be_positive"),
        ("response_format", "invalid_shape"),
        ("stream_timeout", "must_be_positive"),
    }
    assert len(errors) == 8
    assert all(isinstance(e, tuple) and len(e) == 2 for e in errors)


def test_validation_message_lists_the_problems() -> None:
    with pytest.raises(ValidationError) as info:
        allm.stream_generate(Probe().engine, allm.request([]), max_tokens=-3)
    assert "messages: empty" in str(info.value)
    assert "max_tokens: must_be_positive" in str(info.value)


# -- EngineError ------------------------------------------------------------------------
def test_missing_adapter_none() -> None:
    with pytest.raises(EngineError) as info:
        allm.stream_generate(allm.Engine(), allm.request([USER]))
    assert info.value.reason == "missing_adapter"


def test_missing_adapter_unknown_name() -> None:
    with pytest.raises(EngineError) as info:
        allm.stream_generate(allm.Engine(adapter="no-such-adapter-xyz"), allm.request([USER]))
    assert info.value.reason == "missing_adapter"
    assert "no-such-adapter-xyz" in str(info.value)


class NoStream:
    name = "nostream"


@pytest.mark.parametrize("adapter", [NoStream, NoStream(), object()], ids=["class", "instance", "object"])
def test_missing_stream_adapter(adapter: Any) -> None:
    with pytest.raises(EngineError) as info:
        allm.stream_generate(allm.Engine(adapter=adapter), allm.request([USER]))
    assert info.value.reason == "missing_stream_adapter"


class RecordingAdapter:
    """An adapter that needs a model and records what the runner resolved."""

    name = "recording"
    requires_model = True

    def __init__(self) -> None:
        self.calls: list[tuple[Request, StreamOptions]] = []

    def stream(self, request: Request, opts: StreamOptions) -> reactivex.Observable[Any]:
        self.calls.append((request, opts))
        final = MessageCompleted(message=Message(role="assistant", content=""), finish_reason="stop")
        return reactivex.from_iterable([MessageStarted(), final])


def test_missing_model_when_the_adapter_requires_one() -> None:
    adapter = RecordingAdapter()
    with pytest.raises(EngineError) as info:
        allm.stream_generate(allm.Engine(adapter=adapter), allm.request([USER]))
    assert info.value.reason == "missing_model"
    assert "recording" in str(info.value)
    assert adapter.calls == []


@pytest.mark.parametrize(
    ("request_model", "call_model", "engine_model", "expected"),
    [
        ("req", "call", "eng", "req"),
        (None, "call", "eng", "call"),
        (None, None, "eng", "eng"),
        ("req", None, None, "req"),
    ],
)
def test_model_precedence(
    request_model: str | None, call_model: str | None, engine_model: str | None, expected: str
) -> None:
    adapter = RecordingAdapter()
    engine = allm.Engine(adapter=adapter, model=engine_model)
    options = {"model": call_model} if call_model else {}
    events = allm.stream_generate(engine, allm.request([USER], model=request_model), **options)
    ((request, opts),) = adapter.calls
    assert request.model == expected
    assert opts.model == expected
    assert "model" not in opts.params  # the model is never forwarded as a provider param
    assert [e.type for e in events.pipe(reactivex.operators.to_list()).run()] == [
        "message_started",
        "message_completed",
    ]


def test_adapter_preflight_error_raises_synchronously() -> None:
    probe = Probe([("preflight_error", "authentication_failed", {})])
    with pytest.raises(AdapterError) as info:
        allm.stream_generate(probe.engine, allm.request([USER]))
    assert info.value.reason == "authentication_failed"
    assert info.value.provider == "fake"
    assert probe.cleanup == []  # nothing was subscribed


def test_adapter_preflight_error_keeps_its_fields() -> None:
    probe = Probe([("preflight_error", "unsupported_feature", {"message": "no tools here", "status": 400})])
    with pytest.raises(AdapterError) as info:
        allm.stream_generate(probe.engine, allm.request([USER]))
    assert (info.value.reason, info.value.message, info.value.status) == (
        "unsupported_feature",
        "no tools here",
        400,
    )


# -- orchestration options and params ----------------------------------------------------
def test_orchestration_options_are_removed_with_one_debug_record_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = RecordingAdapter()
    engine = allm.Engine(adapter=adapter, model="m")
    with caplog.at_level(logging.DEBUG, logger="rx_allm"):
        allm.stream_generate(
            engine, allm.request([USER]), mode="auto", max_turns=3, halt_when=lambda *_: True, seed=7
        )
    records = [r for r in caplog.records if r.name == "rx_allm" and r.levelno == logging.DEBUG]
    assert len(records) == 3
    messages = " ".join(r.getMessage() for r in records)
    for key in ("mode", "max_turns", "halt_when"):
        assert repr(key) in messages
    ((_request, opts),) = adapter.calls
    assert dict(opts.params) == {"seed": 7}


def test_orchestration_options_in_engine_params_are_removed(caplog: pytest.LogCaptureFixture) -> None:
    adapter = RecordingAdapter()
    engine = allm.Engine(adapter=adapter, model="m", params={"max_turns": 5, "top_p": 0.5})
    with caplog.at_level(logging.DEBUG, logger="rx_allm"):
        allm.stream_generate(engine, allm.request([USER]))
    assert len([r for r in caplog.records if r.name == "rx_allm"]) == 1
    assert dict(adapter.calls[0][1].params) == {"top_p": 0.5}


def test_no_debug_record_without_orchestration_options(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="rx_allm"):
        allm.stream_generate(allm.Engine(adapter=RecordingAdapter(), model="m"), allm.request([USER]), seed=1)
    assert [r for r in caplog.records if r.name == "rx_allm"] == []


def test_engine_params_are_defaults_and_call_options_win() -> None:
    adapter = RecordingAdapter()
    engine = allm.Engine(
        adapter=adapter, model="m", params={"top_p": 0.5, "seed": 1, "temperature": 0.3, "max_tokens": 10}
    )
    allm.stream_generate(engine, allm.request([USER]), seed=2, temperature=0.7, reasoning_effort="low")
    request, opts = adapter.calls[0]
    assert dict(opts.params) == {"top_p": 0.5, "seed": 2, "reasoning_effort": "low"}
    assert request.temperature == 0.7
    assert request.max_tokens == 10


def test_runner_options_are_resolved_not_forwarded() -> None:
    adapter = RecordingAdapter()
    engine = allm.Engine(adapter=adapter, model="m", adapter_opts={"base_url": "http://a", "x": 1})
    allm.stream_generate(
        engine,
        allm.request([USER]),
        stream_timeout=5,
        request_timeout=2.5,
        request_id="rid",
        adapter_opts={"x": 2},
    )
    _request, opts = adapter.calls[0]
    assert (opts.stream_timeout, opts.request_timeout, opts.request_id) == (5.0, 2.5, "rid")
    assert dict(opts.adapter_opts) == {"base_url": "http://a", "x": 2}
    assert dict(opts.params) == {}


# -- errors as data ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [AdapterError, StreamError, ValidationError, EngineError])
def test_unknown_reason_is_rejected(cls: type[RxAllmError]) -> None:
    with pytest.raises(ValueError, match="reason"):
        cls("definitely_not_a_reason")


ERRORS = [
    AdapterError(
        "rate_limited",
        "slow down",
        provider="openai",
        status=429,
        retry_after_ms=1500,
        request_id="req_1",
        cause={"error": {"type": "rate_limit"}},
        metadata={"attempt": 1},
    ),
    AdapterError("unknown", provider="fake", cause="payload"),
    StreamError("truncated", provider="anthropic", event_index=7, metadata={"bytes": 10}),
    StreamError("adapter_error", cause=AdapterError("provider_unavailable", status=529)),
    ValidationError("invalid_request", errors=[("messages", "empty"), ("temperature", "out_of_range")]),
    EngineError("missing_model", "needs a model", provider="openai"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: f"{type(e).__name__}-{e.reason}")
def test_errors_round_trip(error: RxAllmError) -> None:
    data = error.to_dict()
    assert data["type"] == type(error).__name__
    for copy in (
        RxAllmError.from_dict(data),
        type(error).from_dict(data),
        RxAllmError.from_dict(json.loads(json.dumps(data))),
        pickle.loads(pickle.dumps(error)),
    ):
        assert type(copy) is type(error)
        assert copy == error
        assert copy.to_dict() == data
        assert str(copy) == str(error)


def test_nested_cause_round_trips_as_an_error() -> None:
    error = StreamError("adapter_error", cause=AdapterError("timeout", provider="gemini"))
    copy = RxAllmError.from_dict(json.loads(json.dumps(error.to_dict())))
    assert isinstance(copy.cause, AdapterError)
    assert copy.cause.reason == "timeout"
    assert copy.cause.provider == "gemini"


def test_validation_errors_survive_as_pairs() -> None:
    error = ValidationError("invalid_request", errors=[("tools.0.name", "invalid_format")])
    copy = RxAllmError.from_dict(json.loads(json.dumps(error.to_dict())))
    assert isinstance(copy, ValidationError)
    assert copy.errors == [("tools.0.name", "invalid_format")]


def test_error_on_a_response_round_trips_through_json() -> None:
    response = allm.Response(
        error=AdapterError("content_filter", provider="fake", status=400), finish_reason="error"
    )
    copy = allm.Response.model_validate_json(response.model_dump_json())
    assert isinstance(copy.error, AdapterError)
    assert copy.error == response.error


# -- engines as data -----------------------------------------------------------------------
def test_fake_engine_round_trips_through_json() -> None:
    engine = allm.Engine(
        adapter="fake",
        adapter_opts={"script": [["text", "hi"], ["finish", "stop"]]},
        model="m-1",
        tools=[allm.tool(name="lookup", description="d", schema={"type": "object", "properties": {}})],
        params={"seed": 3},
    )
    copy = allm.Engine.model_validate_json(engine.model_dump_json())
    assert copy.model_dump() == engine.model_dump()
    assert copy.adapter == "fake"
    assert copy.tools[0].name == "lookup"
    assert allm.generate_sync(copy, allm.request([USER])).output_text == "hi"


def test_engine_never_shows_the_api_key() -> None:
    key = "sk-canary-Zq9XwV8u7T6s5R4p"
    engine = allm.Engine(
        adapter="fake", adapter_opts={"api_key": key, "script": [("finish", "stop")]}, model="m"
    )
    for text in (
        repr(engine),
        str(engine),
        engine.model_dump_json(),
        json.dumps(engine.model_dump(mode="json")),
    ):
        assert key not in text
        assert "canary" not in text
    assert engine.adapter_opts["api_key"].get_secret_value() == key
