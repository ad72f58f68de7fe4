"""``partial_output`` and ``partial_arguments``: marble diagrams on the Fake, a property, errors.

Marbles use one virtual second per character (see :func:`rx_allm.testing.script_from_marbles`).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from reactivex import Observable
from reactivex import operators as ops

import rx_allm as allm
from rx_allm.events import MessageStarted, TextDelta, ToolCallCompleted, ToolCallDelta, ToolCallStarted
from rx_allm.structured import PartialArguments, parse_partial_json
from rx_allm.testing import (
    assert_completed,
    assert_error,
    fake_engine,
    record,
    record_events,
    script_from_marbles,
)
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec

REQ = allm.request([allm.user("weather?")])


class Weather(BaseModel):
    city: str
    temperature: float
    notes: list[str] = []


class Trip(BaseModel):
    origin: str
    stops: list[Weather]


def stream(script: list[Any]) -> Observable[allm.Event]:
    return allm.stream_generate(fake_engine(script), REQ)


def values(records: list[Any]) -> list[tuple[float, Any]]:
    return [(r.time, r.value) for r in records if r.kind == "N"]


# -- partial_output: marble diagrams -----------------------------------------------------------
def test_partials_appear_as_text_arrives_then_the_final_instance() -> None:
    parts = {
        "a": '{"city": "Pa',
        "b": 'ris", "temperature": 2',
        "c": "1.5, ",
        "d": '"notes": ["sun',
        "e": 'ny"]}',
    }
    script = script_from_marbles("-a-b-c-d-e|", parts)
    records = record_events(stream(script).pipe(allm.partial_output(Weather)))
    # at 1 the required temperature is missing; at 3 the text ends in a number that may grow
    assert values(records) == [
        (5.0, Weather(city="Paris", temperature=21.5)),
        (7.0, Weather(city="Paris", temperature=21.5, notes=["sun"])),
        (9.0, Weather(city="Paris", temperature=21.5, notes=["sunny"])),
        (10.0, Weather(city="Paris", temperature=21.5, notes=["sunny"])),  # the final, validated strictly
    ]
    assert_completed(records, at=10.0)


def test_nothing_is_emitted_before_the_required_fields_exist() -> None:
    script = script_from_marbles(
        "a-b-c|", {"a": '{"notes": ["x"], ', "b": '"city": "Oslo", ', "c": '"temperature": -3}'}
    )
    records = record_events(stream(script).pipe(allm.partial_output(Weather)))
    assert values(records) == [
        (4.0, Weather(city="Oslo", temperature=-3, notes=["x"])),
        (5.0, Weather(city="Oslo", temperature=-3, notes=["x"])),
    ]


def test_a_nested_item_shows_once_its_own_required_fields_exist() -> None:
    text = '{"origin": "Lyon", "stops": [{"city": "Nice", "temperature": 18}, {"city": "Ro'
    script = [*(("text", c) for c in text), ("text", 'me", "temperature": 20}]}'), ("finish", "stop")]
    items = record_events(stream(script).pipe(allm.partial_output(Trip)))
    seen = [r.value for r in items if r.kind == "N"]
    assert seen[0] == Trip(origin="Lyon", stops=[])
    assert Trip(origin="Lyon", stops=[Weather(city="Nice", temperature=18)]) in seen
    assert all(len(trip.stops) <= 1 for trip in seen[:-2])  # {"city": "Ro" lacks its temperature
    assert (
        seen[-2]
        == seen[-1]
        == Trip(
            origin="Lyon", stops=[Weather(city="Nice", temperature=18), Weather(city="Rome", temperature=20)]
        )
    )
    assert_completed(items)


def test_a_final_that_does_not_validate_ends_with_a_typed_error_naming_the_field() -> None:
    script = script_from_marbles("a-b|", {"a": '{"city": "Paris", ', "b": '"temperature": "warm"}'})
    records = record_events(stream(script).pipe(allm.partial_output(Weather)))
    error = assert_error(records, allm.ValidationError, "invalid_output", at=3.0)
    assert error.errors == [("temperature", "float_parsing")]
    assert "temperature" in error.message and "Weather" in error.message
    assert error.metadata == {"output_type": "Weather"}


def test_a_truncated_answer_fails_validation_at_the_end() -> None:
    script = [("text", '{"city": "Paris", "temperature": 2'), ("finish", "length")]
    records = record_events(stream(script).pipe(allm.partial_output(Weather)))
    error = assert_error(records, allm.ValidationError, "invalid_output")
    assert error.errors[0][1] == "json_invalid"
    assert [r.value for r in records if r.kind == "N"] == []  # the trailing 2 might have been 21


def test_an_upstream_error_passes_through_after_the_partials() -> None:
    script = script_from_marbles("a-#", {"a": '{"city": "Paris", "temperature": 3, '}, error="rate_limited")
    records = record_events(stream(script).pipe(allm.partial_output(Weather)))
    assert values(records) == [(0.0, Weather(city="Paris", temperature=3))]
    assert_error(records, allm.AdapterError, "rate_limited", at=2.0)


def test_each_message_starts_over_and_the_last_message_is_the_answer() -> None:
    first = [
        MessageStarted(),
        TextDelta(delta="Let me check the weather."),
        allm.MessageCompleted(
            message=allm.assistant("Let me check the weather."), finish_reason="tool_calls"
        ),
    ]
    second = [
        MessageStarted(),
        TextDelta(delta='{"city": "Oslo", "temperature": 1}'),
        allm.MessageCompleted(
            message=allm.assistant('{"city": "Oslo", "temperature": 1}'), finish_reason="stop"
        ),
    ]
    out = reactivex.from_iterable([*first, *second]).pipe(allm.partial_output(Weather), ops.to_list()).run()
    assert out == [Weather(city="Oslo", temperature=1)] * 2


def test_partial_output_takes_any_type_a_type_adapter_accepts() -> None:
    script = [("text", '[{"city": "A", "temperature": 1}, {"ci'), ("text", 'ty": "B", "temperature": 2}]')]
    out = stream([*script, ("finish", "stop")]).pipe(allm.partial_output(list[Weather]), ops.to_list()).run()
    both = [Weather(city="A", temperature=1), Weather(city="B", temperature=2)]
    assert out == [both[:1], both, both]  # the last partial, then the final


def test_the_final_is_validated_strictly_trailing_text_is_an_error() -> None:
    script = [("text", '{"city": "Paris", "temperature": 20} and more'), ("finish", "stop")]
    records = record_events(stream(script).pipe(allm.partial_output(Weather)))
    assert [r.value for r in records if r.kind == "N"] == [Weather(city="Paris", temperature=20)]
    assert assert_error(records, allm.ValidationError, "invalid_output").errors[0][1] == "json_invalid"


# -- partial_arguments -------------------------------------------------------------------------
def test_partial_arguments_per_tool_call_id_then_the_completed_arguments() -> None:
    def delta(call: str, text: str) -> tuple[str, dict[str, str]]:
        return ("tool_call_delta", {"id": call, "arguments_delta": text})

    parts = {
        "a": delta("c1", '{"q": "rx'),
        "b": delta("c2", '{"n": 4'),
        "c": delta("c1", 'py", "limit": 1'),
        "d": delta("c2", "2}"),
        "e": delta("c1", "0}"),
        "f": ("tool_call", {"id": "c1", "name": "search", "arguments": {"q": "rxpy", "limit": 10}}),
    }
    records = record_events(stream(script_from_marbles("a-b-c-d-e-f|", parts)).pipe(allm.partial_arguments()))
    assert values(records) == [
        (0.0, PartialArguments(id="c1", arguments={"q": "rx"})),
        # at 4 c1 ends in a number that may grow (limit 1): nothing until it is ended
        (6.0, PartialArguments(id="c2", arguments={"n": 42})),
        (8.0, PartialArguments(id="c1", arguments={"q": "rxpy", "limit": 10})),
        (10.0, PartialArguments(id="c1", name="search", arguments={"q": "rxpy", "limit": 10}, complete=True)),
    ]
    assert_completed(records, at=11.0)


def test_partial_arguments_carry_the_name_from_tool_call_started() -> None:
    events = [
        ToolCallStarted(id="c1", name="lookup"),
        ToolCallDelta(id="c1", arguments_delta='{"city": "Ly'),
        ToolCallCompleted(
            id="c1", name="lookup", arguments={"city": "Lyon"}, raw_arguments='{"city": "Lyon"}'
        ),
    ]
    out = reactivex.from_iterable(events).pipe(allm.partial_arguments(), ops.to_list()).run()
    assert out == [
        PartialArguments(id="c1", name="lookup", arguments={"city": "Ly"}),
        PartialArguments(id="c1", name="lookup", arguments={"city": "Lyon"}, complete=True),
    ]


# -- the property: any split of a valid document gives monotone partials ending in the document
def refines(earlier: Any, later: Any) -> bool:
    """``later`` extends ``earlier``: same keys kept, lists grown, strings extended, scalars equal."""
    if isinstance(earlier, dict):
        return isinstance(later, dict) and all(
            k in later and refines(v, later[k]) for k, v in earlier.items()
        )
    if isinstance(earlier, list):
        return (
            isinstance(later, list)
            and len(later) >= len(earlier)
            and all(refines(a, b) for a, b in zip(earlier, later, strict=False))
        )
    if isinstance(earlier, str):
        return isinstance(later, str) and later.startswith(earlier)
    return type(earlier) is type(later) and earlier == later


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
)
documents = st.dictionaries(
    st.text(max_size=6),
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=12,
    ),
    max_size=5,
)


def splits(text: str) -> st.SearchStrategy[list[str]]:
    cuts = st.lists(st.integers(1, max(1, len(text) - 1)), max_size=min(len(text), 40), unique=True)
    return cuts.map(
        lambda cs: [text[a:b] for a, b in zip([0, *sorted(cs)], [*sorted(cs), len(text)], strict=True)]
    )


@st.composite
def split_documents(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    document = draw(documents)
    text = json.dumps(document, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1])))
    return document, [part for part in draw(splits(text)) if part]


@settings(max_examples=300, deadline=None)
@given(split_documents())
def test_partials_of_any_split_are_monotone_and_end_in_the_full_parse(
    case: tuple[dict[str, Any], list[str]],
) -> None:
    document, parts = case
    deltas = [ToolCallDelta(id="c", arguments_delta=p) for p in parts]
    done = ToolCallCompleted(id="c", name="f", arguments=document, raw_arguments="".join(parts))
    tool_partials = (
        reactivex.from_iterable([*deltas, done]).pipe(allm.partial_arguments(), ops.to_list()).run()
    )
    text_events = [MessageStarted(), *(TextDelta(delta=p) for p in parts)]
    outputs = (
        reactivex.from_iterable(text_events).pipe(allm.partial_output(dict[str, Any]), ops.to_list()).run()
    )

    for sequence in ([p.arguments for p in tool_partials], outputs):
        assert sequence[-1] == document
        for earlier, later in itertools.pairwise(sequence):
            assert refines(earlier, later), (earlier, later)
    streamed = [p.arguments for p in tool_partials if not p.complete]
    assert not streamed or refines(streamed[-1], document)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 2', None),  # may become 21
        ('{"a": 2 ', {"a": 2}),
        ('{"a": 0', None),  # may become 0.5
        ('{"a": 1.5', None),
        ('{"a": "12', {"a": "12"}),  # digits inside a string are text
        ('{"a": [1, 2]', {"a": [1, 2]}),
        ('{"a": tr', {}),
        ("", None),
    ],
)
def test_parse_partial_json_holds_back_a_number_that_may_grow(text: str, expected: Any) -> None:
    assert parse_partial_json(text) == expected


# -- inside a chat: the final structured answer after tool steps --------------------------------
def test_partial_output_of_a_chat_is_the_final_answer_after_the_tool_steps() -> None:
    @allm.tool
    def lookup(city: str) -> dict[str, float]:
        """Current temperature of a city."""
        return {"temperature": 21.5}

    answer = ['{"city": "Par', 'is", "temperature": 2', "1.5, ", '"notes": ["warm"]}']
    engine = allm.Engine(
        adapter="fake",
        adapter_opts={
            "scripts": [
                [
                    ("text", "Let me look that up."),
                    ("tool_call", {"id": "c1", "name": "lookup", "arguments": {"city": "Paris"}}),
                    ("finish", "tool_calls"),
                ],
                [*(("text", part) for part in answer), ("finish", "stop")],
            ]
        },
    )
    events = allm.stream_chat(engine, "Weather in Paris, as JSON", tools=[lookup])
    records = record_events(events.pipe(allm.partial_output(Weather)))
    assert [r.value for r in records if r.kind == "N"] == [
        Weather(city="Paris", temperature=21.5),
        Weather(city="Paris", temperature=21.5, notes=["warm"]),
        Weather(city="Paris", temperature=21.5, notes=["warm"]),  # the final, after chat_completed's step
    ]
    assert_completed(records)


@pytest.mark.parametrize(
    ("earlier", "later", "expected"),
    [
        ({"a": "x"}, {"a": "xy", "b": 1}, True),
        ({"a": {"b": ""}}, {"a": {}}, False),  # a string dropped: what an older parser does inside an escape
        ([1, "a"], [1, "ab", 3], True),
        ([1, 2], [1], False),
        (2, 21, False),
        (True, 1, False),
    ],
)
def test_refines_is_the_guard_that_keeps_partials_monotone(earlier: Any, later: Any, expected: bool) -> None:
    assert allm.structured.refines(earlier, later) is expected


# -- over real sockets: tool arguments as OpenAI, Responses and Anthropic stream them ---------------
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["openai", "responses", "anthropic"])
async def test_partial_arguments_over_each_provider_stream(provider: str) -> None:
    arguments = {"query": "reactive streams in python", "limit": 10, "tags": ["rx", "llm"]}
    calls = [ToolCallSpec(name="search", arguments=arguments, id="call_1", fragments=7)]
    async with ProviderEmulator([Reply(text="", tool_calls=calls, finish="tool_calls")]) as emulator:
        adapter, extra = ("openai", {"endpoint": "responses"}) if provider == "responses" else (provider, {})
        engine = allm.Engine(
            adapter=adapter,
            model="m-1",
            adapter_opts={
                "base_url": emulator.base_url(provider),
                "api_key": "sk-test-args-0123456789",
                **extra,
            },
        )
        partials = await record(allm.stream_generate(engine, REQ).pipe(allm.partial_arguments()))
    assert partials.completed
    items = partials.events
    assert items[-1] == PartialArguments(id=items[-1].id, name="search", arguments=arguments, complete=True)
    streamed = [p.arguments for p in items[:-1]]
    assert len(streamed) >= 2 and all(p.id == items[-1].id and p.name == "search" for p in items)
    for earlier, later in itertools.pairwise([*streamed, arguments]):
        assert refines(earlier, later)
