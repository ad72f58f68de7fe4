"""``response_format=Model``: the strict schema each of the four APIs receives, and ``Response.output``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

import rx_allm as allm
from rx_allm.schema import json_schema_format, strict_json_schema
from rx_allm.testing.emulator import ProviderEmulator, Reply

KEY = "sk-test-format-0123456789abcdef"
ANSWER = '{"city": "Paris", "temperature": 21.5, "home": {"street": "Rue X", "zip": "75001"}, "notes": []}'


class Address(BaseModel):
    street: str
    zip: str = ""


class Weather(BaseModel):
    city: str
    temperature: float
    home: Address = Field(description="where the reader lives")
    notes: list[str] = []


WEATHER = Weather(city="Paris", temperature=21.5, home=Address(street="Rue X", zip="75001"))


def engine_for(emulator: ProviderEmulator, provider: str, **params: Any) -> allm.Engine:
    adapter, extra = ("openai", {"endpoint": "responses"}) if provider == "responses" else (provider, {})
    return allm.Engine(
        adapter=adapter,
        model="m-1",
        adapter_opts={"base_url": emulator.base_url(provider), "api_key": KEY, **extra},
        params=params,
    )


# -- the strict schema -------------------------------------------------------------------------
def test_the_strict_schema_closes_objects_requires_every_property_and_inlines_refs_with_siblings() -> None:
    schema = strict_json_schema(Weather)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["city", "temperature", "home", "notes"]
    home = schema["properties"]["home"]
    assert "$ref" not in home and home["description"] == "where the reader lives"
    assert home["additionalProperties"] is False and home["required"] == ["street", "zip"]
    assert "default" not in repr(schema["properties"]["notes"]) and "default" not in repr(home)
    assert schema["$defs"]["Address"]["additionalProperties"] is False


def test_a_property_named_like_a_keyword_is_kept() -> None:
    class Odd(BaseModel):
        default: int = 3
        properties: str

    schema = strict_json_schema(Odd)
    assert sorted(schema["properties"]) == ["default", "properties"]
    assert schema["required"] == ["default", "properties"]


def test_a_request_with_a_class_serializes_as_the_json_schema_format() -> None:
    req = allm.request([allm.user("hi")], response_format=Weather)
    assert req.response_format is Weather
    dumped = req.model_dump(mode="json")
    assert dumped["response_format"] == json_schema_format(Weather)
    assert allm.Request.model_validate_json(req.model_dump_json()).response_format == json_schema_format(
        Weather
    )


def test_preflight_accepts_a_model_class_and_refuses_another_class() -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", ANSWER), ("finish", "stop")]})
    assert (
        allm.generate_sync(engine, allm.request([allm.user("x")]), response_format=Weather).output == WEATHER
    )
    with pytest.raises(allm.ValidationError) as refused:
        allm.stream_generate(engine, allm.request([allm.user("x")]), response_format=int)
    assert refused.value.errors == [("response_format", "invalid_shape")]
    with pytest.raises(allm.ValidationError) as typed:
        allm.request([allm.user("x")], response_format=int)  # type: ignore[arg-type]
    assert typed.value.reason == "invalid_request"


# -- what each API receives, and Response.output --------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["openai", "responses", "anthropic", "gemini"])
async def test_each_api_gets_its_strict_schema_form_and_the_output_validates(
    emulator: ProviderEmulator, provider: str
) -> None:
    emulator.enqueue(Reply(text=[ANSWER[:30], ANSWER[30:70], ANSWER[70:]]))
    response = await allm.generate(
        engine_for(emulator, provider), allm.request([allm.user("x")]), response_format=Weather
    )
    assert response.ok and response.output == WEATHER
    body = emulator.requests[0].json
    schema = strict_json_schema(Weather)
    if provider == "openai":
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "Weather", "schema": schema, "strict": True},
        }
    elif provider == "responses":
        assert body["text"]["format"] == {
            "type": "json_schema",
            "name": "Weather",
            "schema": schema,
            "strict": True,
        }
    elif provider == "anthropic":
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
        assert not any(key.startswith("anthropic-beta") for key in emulator.requests[0].headers)
    else:
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseJsonSchema"] == schema and "responseSchema" not in config


@pytest.mark.asyncio
async def test_an_output_that_does_not_validate_is_a_typed_error_with_the_finish_reason_kept(
    emulator: ProviderEmulator,
) -> None:
    emulator.enqueue(Reply(text='{"city": "Paris", "temperature": 2', finish="length"))
    req = allm.request([allm.user("x")], response_format=Weather)
    response = await allm.generate(engine_for(emulator, "openai"), req)
    assert response.output is None and not response.ok
    assert isinstance(response.error, allm.ValidationError) and response.error.reason == "invalid_output"
    assert response.finish_reason == "length"
    assert response.output_text == '{"city": "Paris", "temperature": 2'


@pytest.mark.asyncio
async def test_the_engine_param_gives_the_format_and_a_stream_error_leaves_output_unset(
    emulator: ProviderEmulator,
) -> None:
    emulator.enqueue(Reply(text=ANSWER), Reply(status=503))
    engine = engine_for(emulator, "gemini", response_format=Weather)
    assert (await allm.generate(engine, allm.request([allm.user("x")]))).output == WEATHER
    failed = await allm.generate(engine, allm.request([allm.user("x")]))
    assert failed.output is None and isinstance(failed.error, allm.AdapterError)


@pytest.mark.asyncio
async def test_a_hand_written_json_schema_dict_keeps_gemini_response_schema(
    emulator: ProviderEmulator,
) -> None:
    emulator.enqueue(Reply(text="{}"))
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
    response = await allm.generate(
        engine_for(emulator, "gemini"), allm.request([allm.user("x")], response_format=fmt)
    )
    assert response.ok and response.output is None  # no class: nothing to validate into
    config = emulator.requests[0].json["generationConfig"]
    assert config["responseSchema"] == {"type": "object"} and "responseJsonSchema" not in config


@pytest.mark.asyncio
async def test_anthropic_accepts_a_json_schema_dict_and_still_refuses_json_object(
    emulator: ProviderEmulator,
) -> None:
    emulator.enqueue(Reply(text="{}"))
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
    await allm.generate(
        engine_for(emulator, "anthropic"), allm.request([allm.user("x")], response_format=fmt)
    )
    assert emulator.requests[0].json["output_config"] == {
        "format": {"type": "json_schema", "schema": {"type": "object"}}
    }
    with pytest.raises(allm.AdapterError) as refused:
        allm.stream_generate(
            engine_for(emulator, "anthropic"), allm.request([allm.user("x")]), response_format="json_object"
        )
    assert refused.value.reason == "unsupported_feature"


def test_streaming_and_the_final_value_combine() -> None:
    parts = [ANSWER[:25], ANSWER[25:60], ANSWER[60:]]
    engine = allm.Engine(
        adapter="fake", adapter_opts={"script": [*(("text", p) for p in parts), ("finish", "stop")]}
    )
    events = allm.stream_generate(engine, allm.request([allm.user("x")]), response_format=Weather)
    seen: list[Weather] = []
    events.pipe(allm.partial_output(Weather)).subscribe(on_next=seen.append)
    assert seen[-1] == WEATHER and len(seen) >= 2


# -- chats ----------------------------------------------------------------------------------------
def chat_engine(answer: str, **params: Any) -> allm.Engine:
    scripts = [
        [
            ("tool_call", {"id": "c1", "name": "lookup", "arguments": {"city": "Paris"}}),
            ("finish", "tool_calls"),
        ],
        [("text", answer), ("finish", "stop")],
    ]
    return allm.Engine(adapter="fake", adapter_opts={"scripts": scripts}, params=params)


@allm.tool
def lookup(city: str) -> str:
    """The weather of a city."""
    return "21.5 degrees"


def test_a_chat_with_response_format_validates_its_final_answer() -> None:
    result = allm.chat_sync(chat_engine(ANSWER), "Weather?", tools=[lookup], response_format=Weather)
    assert result.ok and result.response.output == WEATHER
    assert len(result.steps) == 2  # the tool step was not validated


def test_a_chat_whose_final_answer_does_not_validate_reports_the_fields() -> None:
    result = allm.chat_sync(
        chat_engine('{"city": "Paris"}'), "Weather?", tools=[lookup], response_format=Weather
    )
    assert result.response.output is None and not result.ok
    assert isinstance(result.error, allm.ValidationError) and result.error.reason == "invalid_output"
    assert ("temperature", "missing") in result.error.errors
    assert result.halted_reason == "completed"  # the chat ended; its answer is what failed


@pytest.mark.asyncio
@pytest.mark.parametrize("on_engine", [False, True])
async def test_a_session_reply_validates_its_final_answer(on_engine: bool) -> None:
    engine = chat_engine(ANSWER, **({"response_format": Weather} if on_engine else {}))
    options: dict[str, Any] = {} if on_engine else {"response_format": Weather}
    session = allm.Session()
    result = await session.reply(engine, "Weather?", tools=[lookup], **options)
    assert result.ok and result.response.output == WEATHER
    assert result.steps[-1].response.output is None  # the steps stay as the events gave them
    assert session.status == "completed" and session.error is None


@pytest.mark.asyncio
async def test_a_session_reply_whose_answer_is_not_json_reports_it_the_session_completed() -> None:
    session = allm.Session()
    result = await session.reply(chat_engine("not json"), "Weather?", tools=[lookup], response_format=Weather)
    assert result.response.output is None and result.halted_reason == "completed"
    assert isinstance(result.error, allm.ValidationError) and result.error.reason == "invalid_output"
    assert result.error.errors[0][1] == "json_invalid" and result.response.error == result.error
    # the session follows the events: the chat completed, its answer is in the thread
    assert session.status == "completed" and session.error is None
    assert session.thread.messages[-1].text == "not json"
