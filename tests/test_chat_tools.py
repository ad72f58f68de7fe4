"""Tool definitions and bad input: every problem is a typed error, raised before I/O where knowable."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field
from reactivex.testing import TestScheduler

import rx_allm as allm
from rx_allm.testing import assert_error, record_events


def engine(*scripts: list[Any], **opts: Any) -> allm.Engine:
    return allm.Engine(adapter="fake", adapter_opts={"scripts": [list(s) for s in scripts], **opts})


def call(name: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return ("tool_call", {"id": "c1", "name": name, "arguments": arguments})


class Point(BaseModel):
    x: int
    y: int


def test_schema_and_description_come_from_the_signature() -> None:
    @allm.tool
    async def get_weather(
        city: Annotated[str, Field(description="City name")], unit: Literal["c", "f"] = "c"
    ) -> str:
        """Current weather for a city."""
        return f"{city}:{unit}"

    spec = get_weather.spec
    assert spec.name == "get_weather" and spec.description == "Current weather for a city."
    assert spec.schema_["properties"]["city"] == {"description": "City name", "type": "string"}
    assert spec.schema_["properties"]["unit"]["enum"] == ["c", "f"]
    assert spec.schema_["required"] == ["city"] and spec.schema_["additionalProperties"] is False
    assert get_weather.is_async


def test_decorator_options_and_the_function_stays_callable() -> None:
    @allm.tool(name="plot", description="Plot a point", timeout=2.5)
    def draw(point: Point) -> str:
        return f"{point.x},{point.y}"

    assert draw.name == "plot" and draw.spec.description == "Plot a point" and draw.timeout == 2.5
    assert draw(Point(x=1, y=2)) == "1,2"
    assert draw.validate({"point": {"x": 1, "y": 2}}) == {"point": Point(x=1, y=2)}
    assert "$defs" in draw.spec.schema_


def test_the_spec_form_is_a_plain_tool_and_also_a_decorator() -> None:
    spec = allm.tool(name="lookup", description="Find", schema={"type": "object", "properties": {}})
    assert isinstance(spec, allm.Tool) and spec.name == "lookup"
    assert allm.request([allm.user("x")], tools=[spec]).tools[0].name == "lookup"
    assert spec.model_dump() == {
        "name": "lookup",
        "description": "Find",
        "schema": {"type": "object", "properties": {}},
    }

    @allm.tool(name="lookup", description="Find")
    def find(q: str) -> str:
        return q

    assert isinstance(find, allm.FunctionTool) and find.spec.schema_["required"] == ["q"]


def test_a_plain_function_is_accepted_as_a_tool() -> None:
    def double(n: int) -> int:
        """Twice n."""
        return 2 * n

    result = allm.chat_sync(
        engine([call("double", n=4), ("finish", "tool_calls")], [("finish", "stop")]), "x", tools=[double]
    )
    assert result.steps[0].tool_outcomes[0].result == 8


def test_pydantic_and_datetime_results_are_encoded_as_json() -> None:
    @allm.tool
    def where() -> dict[str, Any]:
        """Somewhere."""
        return {"point": Point(x=1, y=2), "at": datetime.date(2026, 1, 2)}

    result = allm.chat_sync(
        engine([call("where"), ("finish", "tool_calls")], [("finish", "stop")]), "x", tools=[where]
    )
    assert result.thread.messages[2].content == '{"point": {"x": 1, "y": 2}, "at": "2026-01-02"}'


class Opaque:
    pass


def test_a_signature_pydantic_cannot_describe_is_refused_at_definition() -> None:
    with pytest.raises(allm.ValidationError) as info:

        @allm.tool
        def bad(thing: Opaque) -> str:
            return "x"

    assert info.value.reason == "invalid_tool" and info.value.errors == [
        ("tools.bad", "unsupported_signature")
    ]


@pytest.mark.parametrize("signature", ["*args", "**kwargs", "a, /"])
def test_variadic_and_positional_only_parameters_are_refused(signature: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def f({signature}):\n    return 1", namespace)
    with pytest.raises(allm.ValidationError) as info:
        allm.tool(namespace["f"])
    assert info.value.errors[0][1] == "unsupported_parameter"


def test_duplicate_tool_names_are_refused_before_io() -> None:
    requests: list[Any] = []

    @allm.tool(name="same")
    def one() -> int:
        return 1

    @allm.tool(name="same")
    def two() -> int:
        return 2

    with pytest.raises(allm.ValidationError) as info:
        allm.stream_chat(engine([("finish", "stop")], record=requests), "x", tools=[one, two])
    assert info.value.errors == [("tools.1.name", "duplicate_name")] and requests == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_turns": 0}, "max_turns"),
        ({"max_turns": 1.5}, "max_turns"),
        ({"mode": "semi"}, "mode"),
        ({"tool_timeout": -1}, "tool_timeout"),
        ({"on_tool_error": "ignore"}, "on_tool_error"),
        ({"halt_when": "yes"}, "halt_when"),
    ],
)
def test_bad_chat_options_raise_before_io(options: dict[str, Any], field: str) -> None:
    requests: list[Any] = []
    with pytest.raises(allm.ValidationError) as info:
        allm.stream_chat(engine([("finish", "stop")], record=requests), "x", **options)
    assert info.value.errors[0][0] == field and requests == []


def test_a_bad_first_request_raises_from_stream_chat() -> None:
    with pytest.raises(allm.ValidationError) as info:
        allm.stream_chat(engine([("finish", "stop")]), [], temperature=5.0)
    assert ("messages", "empty") in info.value.errors and ("temperature", "out_of_range") in info.value.errors


def test_a_non_json_result_ends_the_chat_with_a_typed_error() -> None:
    @allm.tool
    def opaque() -> Any:
        """Returns something JSON cannot hold."""
        return Opaque()

    requests: list[Any] = []
    eng = engine([call("opaque"), ("finish", "tool_calls")], [("finish", "stop")], record=requests)
    records = record_events(allm.stream_chat(eng, "x", tools=[opaque]), TestScheduler())
    error = assert_error(records, allm.ValidationError, "invalid_tool")
    assert error.errors == [("tools.opaque.result", "not_json_serializable")] and len(requests) == 1


def test_halt_when_that_raises_is_a_typed_error() -> None:
    @allm.tool
    def ping() -> str:
        """Pong."""
        return "pong"

    def halt_when(step: allm.StepResult) -> bool:
        raise KeyError("oops")

    eng = engine([call("ping"), ("finish", "tool_calls")], [("finish", "stop")])
    result = allm.chat_sync(eng, "x", tools=[ping], halt_when=halt_when)
    assert result.halted_reason == "error" and isinstance(result.error, allm.ValidationError)
    assert result.error.errors == [("halt_when", "raised")] and len(result.steps) == 1


def test_engine_tools_without_functions_halt_as_manual_calls() -> None:
    eng = engine([call("lookup"), ("finish", "tool_calls")])
    eng.tools.append(allm.tool(name="lookup"))
    result = allm.chat_sync(eng, "x")
    assert result.halted_reason == "manual_tool_calls" and result.pending_tool_calls[0].name == "lookup"


def test_halt_needs_a_reason() -> None:
    with pytest.raises(ValueError):
        allm.Halt("")


def test_a_key_in_a_tool_exception_never_reaches_the_model() -> None:
    key = "sk-proj-chat0123456789abcdefghijklmnopqrstuv"

    @allm.tool
    def leaky() -> str:
        """Fails with a key in its message."""
        raise RuntimeError(f"upstream refused key {key}")

    requests: list[Any] = []
    eng = engine([call("leaky"), ("finish", "tool_calls")], [("finish", "stop")], record=requests)
    result = allm.chat_sync(eng, "x", tools=[leaky])
    sent = requests[1][0].messages[-1].content
    assert "upstream refused key" in sent and key not in sent
    assert key not in result.model_dump_json()


def test_a_misspelt_chat_option_is_refused_with_the_nearest_name() -> None:
    eng = allm.Engine(
        adapter="openai", adapter_opts={"api_key": "sk-test-0000", "base_url": "http://127.0.0.1:9/v1"}
    )
    with pytest.raises(allm.ValidationError) as info:
        allm.stream_chat(eng, "x", model="gpt-4o-mini", max_turn=3)
    assert info.value.errors[0][0] == "max_turn" and "did you mean 'max_turns'?" in info.value.errors[0][1]
