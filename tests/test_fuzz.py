"""Fuzzing: arbitrary bytes and provider-shaped JSON never raise anything but typed errors.

* The SSE decoder, fed arbitrary bytes at arbitrary chunkings, returns events or raises
  ``StreamError("malformed_event")``, and what it returns before failing does not depend
  on the chunking.
* Every provider mapper, driven the way the transport drives it (``start()``, ``feed()``
  per event, which counts it, ``end()`` at EOF unless finished), fed random events:
  random event names, payloads that are random dicts shaped like the provider's events
  (its keys, its type names, random value types at any depth), mutated wire fixtures,
  non-objects, garbage and very deep nesting. Only ``AdapterError``/``StreamError`` may
  escape, and every emitted event is valid: non-empty deltas, dict arguments, usage as
  ``Usage``, ``message_started`` first, tool call events after their start, one
  ``message_completed``, last, and only on success.
* The same through the emulator over real sockets: random bodies never end a stream
  with an untyped failure (``StreamError("unknown")``).
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import WIRE_FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rx_allm as allm
from rx_allm._sse import SSEDecoder, SSEEvent
from rx_allm.adapter import StreamMapper, parse_arguments
from rx_allm.events import (
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.models import Usage
from rx_allm.providers.anthropic import AnthropicMapper
from rx_allm.providers.gemini import GeminiMapper
from rx_allm.providers.openai import ChatCompletionsMapper, ResponsesMapper
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import Recording, record_sync

TYPED = (allm.AdapterError, allm.StreamError)
FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "error", "other", None}


# -- the SSE decoder -------------------------------------------------------------------------
SSE_PIECES = (b"data:", b"data: ", b"event: x", b"id: 1", b"retry: 5", b":", b"\n", b"\r", b"\r\n", b"\n\n")
JSON_PIECES = (b"[DONE]", b'{"a": 1}', b"{", b"\x00")
UTF8_PIECES = (b"\xef\xbb\xbf", b"\xef\xbb", b"\xff", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x91\x8b", b"\xc3\xa7")


def sse_bytes() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and byte soups made of SSE syntax, BOMs, line ends and invalid UTF-8."""
    pieces = st.sampled_from((*SSE_PIECES, *JSON_PIECES, *UTF8_PIECES))
    soup = st.lists(pieces | st.binary(max_size=6), max_size=40).map(b"".join)
    return st.binary(max_size=300) | soup


def decode_all(payload: bytes, cuts: list[int]) -> tuple[list[SSEEvent], allm.StreamError | None]:
    """Feed ``payload`` cut at ``cuts``, then close; the events returned and the error raised, if any."""
    decoder = SSEDecoder(provider="fuzz")
    events: list[SSEEvent] = []
    bounds = [0, *sorted(cuts), len(payload)]
    try:
        for start, end in itertools.pairwise(bounds):
            events += decoder.feed(payload[start:end])
        decoder.check()
    except allm.StreamError as exc:
        return events, exc
    return events, None


@settings(max_examples=600, deadline=None)
@given(payload=sse_bytes(), data=st.data())
def test_sse_decoder_arbitrary_bytes(payload: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=12))
    events, error = decode_all(payload, cuts)
    whole_events, whole_error = decode_all(payload, [])
    assert (events, error is None) == (whole_events, whole_error is None)
    for event in events:
        assert isinstance(event, SSEEvent) and isinstance(event.event, str) and isinstance(event.data, str)
        assert event.event and "\n" not in event.event and "\r" not in event.data
    if error is not None:
        assert error.reason == "malformed_event" and error.provider == "fuzz"
        assert error.event_index == len(events) + 1


def test_sse_decoder_keeps_events_before_an_invalid_line() -> None:
    """Events completed before invalid UTF-8 are returned whatever the chunking; the error follows."""
    payload = b"data: one\n\ndata: two\n\ndata: \xff\n\ndata: three\n\n"
    decoder = SSEDecoder(provider="openai")
    assert [e.data for e in decoder.feed(payload)] == ["one", "two"]
    with pytest.raises(allm.StreamError) as info:
        decoder.check()
    assert (info.value.reason, info.value.provider, info.value.event_index) == (
        "malformed_event",
        "openai",
        3,
    )
    with pytest.raises(allm.StreamError):
        decoder.feed(b"data: more\n\n")
    for cut in range(len(payload) + 1):
        events, error = decode_all(payload, [cut])
        assert [e.data for e in events] == ["one", "two"] and error is not None, cut


# -- provider mappers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vocabulary:
    """What one provider's events are made of."""

    mapper: type[StreamMapper]
    fixtures: tuple[str, ...]
    events: tuple[str, ...]  # SSE event names and payload "type" values
    keys: tuple[str, ...]
    words: tuple[str, ...]  # string values that mean something to the mapper


USAGE_KEYS = "input_tokens output_tokens total_tokens cached_tokens reasoning_tokens"
ERROR_KEYS = "error message code type param status"


def words(*groups: str) -> tuple[str, ...]:
    return tuple(word for group in groups for word in group.split())


CHAT = Vocabulary(
    ChatCompletionsMapper,
    words("openai_text openai_tool_calls openai_usage_chunk openai_midstream_error"),
    words("message error"),
    words(
        "id choices index delta role content refusal tool_calls function name arguments type finish_reason",
        "usage prompt_tokens completion_tokens prompt_tokens_details completion_tokens_details",
        USAGE_KEYS,
        ERROR_KEYS,
    ),
    words("stop length tool_calls function_call content_filter assistant [DONE] server_error"),
)
RESPONSES = Vocabulary(
    ResponsesMapper,
    words("responses_text responses_function_call responses_failed"),
    words(
        "response.created response.output_text.delta response.output_item.added response.output_item.done",
        "response.function_call_arguments.delta response.function_call_arguments.done",
        "response.reasoning_summary_text.delta response.reasoning_summary.delta",
        "response.completed response.incomplete response.failed error",
    ),
    words(
        "type delta item item_id output_index summary_index arguments call_id id name response status",
        "incomplete_details reason usage input_tokens_details output_tokens_details",
        USAGE_KEYS,
        ERROR_KEYS,
    ),
    words("function_call message completed incomplete max_output_tokens content_filter"),
)
ANTHROPIC = Vocabulary(
    AnthropicMapper,
    words("anthropic_text anthropic_tool_use anthropic_thinking anthropic_overloaded_error"),
    words(
        "message_start content_block_start content_block_delta content_block_stop message_delta",
        "message_stop ping error message",
    ),
    words(
        "type message id model usage index content_block text thinking signature data name input delta",
        "partial_json stop_reason stop_sequence cache_read_input_tokens cache_creation_input_tokens",
        USAGE_KEYS,
        ERROR_KEYS,
    ),
    words(
        "text tool_use thinking redacted_thinking text_delta input_json_delta thinking_delta",
        "signature_delta end_turn max_tokens overloaded_error",
    ),
)
GEMINI = Vocabulary(
    GeminiMapper,
    words("gemini_text gemini_function_call"),
    words("message"),
    words(
        "candidates content parts text thought thoughtSignature functionCall name args id finishReason",
        "usageMetadata promptTokenCount candidatesTokenCount totalTokenCount thoughtsTokenCount",
        "promptFeedback blockReason responseId modelVersion",
        ERROR_KEYS,
    ),
    words("STOP MAX_TOKENS SAFETY MALFORMED_FUNCTION_CALL OTHER INTERNAL model [DONE]"),
)
VOCABULARIES = {"chat": CHAT, "responses": RESPONSES, "anthropic": ANTHROPIC, "gemini": GEMINI}


@functools.cache
def fixture_frames(name: str) -> tuple[SSEEvent, ...]:
    payload = (WIRE_FIXTURES / f"{name}.sse").read_bytes()
    return tuple(SSEDecoder().feed(payload))


@functools.cache
def json_values(vocab: Vocabulary) -> st.SearchStrategy[Any]:
    """Any JSON value, its dict keys and strings drawn mostly from the provider's vocabulary."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**66), 2**66)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=6)
        | st.sampled_from(vocab.words + vocab.events)
    )
    keys = st.sampled_from(vocab.keys) | st.text(max_size=4)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
        max_leaves=12,
    )


@functools.cache
def payloads(vocab: Vocabulary) -> st.SearchStrategy[str]:
    """``data:`` payloads: provider-shaped dicts (with and without a known ``type``), any JSON, garbage."""
    shaped = st.dictionaries(st.sampled_from(vocab.keys), json_values(vocab), min_size=1, max_size=6)
    typed = st.builds(lambda d, t: {**d, "type": t}, shaped, st.sampled_from(vocab.events))
    return st.one_of(
        shaped.map(json.dumps),
        typed.map(json.dumps),
        json_values(vocab).map(json.dumps),
        st.text(max_size=20),
        st.sampled_from(["[DONE]", "", "null", "{}", "[]", '"x"', "NaN", '{"a": NaN}', "1e999"]),
        st.integers(150, 400).map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.integers(150, 400).map(lambda n: '{"error": ' + "[" * n + "]" * n + "}"),
    )


@functools.cache
def fixture_values(vocab: Vocabulary) -> st.SearchStrategy[tuple[str, Any]]:
    """The (event name, parsed payload) of every JSON frame of the provider's fixtures."""
    frames = [f for name in vocab.fixtures for f in fixture_frames(name) if f.data.startswith("{")]
    return st.sampled_from([(f.event, json.loads(f.data)) for f in frames])


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (of dict keys and list indexes) inside a JSON value."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from paths(child, (*prefix, key))


def mutate(value: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> Any:
    """A copy of ``value`` with the item at ``path`` replaced (or removed)."""
    if not path:
        return replacement
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if delete and not rest:
            del copy[head]
        else:
            copy[head] = mutate(value[head], rest, replacement, delete)
        return copy
    copy_list = list(value)
    copy_list[head] = mutate(value[head], rest, replacement, delete)
    return copy_list


@st.composite
def mutated_fixture_event(draw: st.DrawFn, vocab: Vocabulary) -> SSEEvent:
    """A real frame of one of the provider's fixtures with random parts replaced or removed."""
    name, value = draw(fixture_values(vocab))
    for _ in range(draw(st.integers(1, 3))):
        places = list(paths(value))
        path = places[draw(st.integers(0, len(places) - 1))]
        value = mutate(value, path, draw(json_values(vocab)), draw(st.booleans()))
    return SSEEvent(name, json.dumps(value))


@st.composite
def shaped_event(draw: st.DrawFn, vocab: Vocabulary) -> SSEEvent:
    """A random event: a random name with a random payload, or a mutated fixture frame."""
    if draw(st.integers(0, 3)) == 0:
        return draw(mutated_fixture_event(vocab))
    return SSEEvent(draw(st.sampled_from(vocab.events) | st.text(max_size=8)), draw(payloads(vocab)))


@st.composite
def edited_fixture(draw: st.DrawFn, vocab: Vocabulary) -> list[SSEEvent]:
    """A real fixture's frames, some dropped or repeated (a lost block stop, a second start...)."""
    frames = fixture_frames(draw(st.sampled_from(vocab.fixtures)))
    return [f for f in frames for _ in range(draw(st.sampled_from([1, 1, 1, 1, 0, 2])))]


def event_streams(vocab: Vocabulary) -> st.SearchStrategy[list[SSEEvent]]:
    """Random events after an edited fixture or a real fixture's opening frames."""
    prefix = st.sampled_from(vocab.fixtures).flatmap(
        lambda name: st.integers(0, len(fixture_frames(name))).map(lambda n: list(fixture_frames(name)[:n]))
    )
    return st.builds(
        lambda p, r: p + r, prefix | edited_fixture(vocab), st.lists(shaped_event(vocab), max_size=6)
    )


def drive(mapper_type: type[StreamMapper], stream: list[SSEEvent]) -> tuple[list[Event], Exception | None]:
    """Run ``stream`` through a mapper as the transport does; the events and the typed error, if any."""
    out: list[Event] = []
    mapper = mapper_type(out.append)
    try:
        mapper.start()
        for event in stream:
            mapper.feed(event)
            if mapper.finished:
                break
        else:
            mapper.end()
    except TYPED as exc:
        return out, exc
    assert mapper.finished, "a stream that ended without an error must have completed"
    return out, None


def check_events(events: list[Event], error: Exception | None) -> None:
    """Every event is valid, in a valid order; ``message_completed`` once, last, only on success."""
    started: set[str] = set()
    for i, event in enumerate(events):
        event.model_dump_json()  # serializable
        if isinstance(event, MessageStarted):
            assert i == 0, "message_started must be the first event"
        elif isinstance(event, TextDelta):
            assert isinstance(event.delta, str) and event.delta
        elif isinstance(event, TextCompleted):
            assert isinstance(event.text, str)
        elif isinstance(event, ToolCallStarted):
            assert isinstance(event.id, str) and isinstance(event.name, str)
            started.add(event.id)
        elif isinstance(event, ToolCallDelta):
            assert event.id in started and isinstance(event.arguments_delta, str) and event.arguments_delta
        elif isinstance(event, ToolCallCompleted):
            assert event.id in started and isinstance(event.arguments, dict)
            assert isinstance(event.raw_arguments, str)
        elif isinstance(event, RawChunk):
            assert isinstance(event.kind, str)
            assert event.kind != "usage" or isinstance(event.data, Usage)
        elif isinstance(event, MessageCompleted):
            assert i == len(events) - 1, "nothing may follow message_completed"
            assert event.finish_reason in FINISH_REASONS and event.message.role == "assistant"
            assert all(isinstance(call.arguments, dict) for call in event.message.tool_calls)
        else:  # pragma: no cover - the event union is closed
            raise AssertionError(f"unexpected event {event!r}")
    if events:
        assert isinstance(events[0], MessageStarted)
    completed = [e for e in events if isinstance(e, MessageCompleted)]
    assert len(completed) == (0 if error is not None else 1)
    if completed:
        check_message(events, completed[0])


def check_message(events: list[Event], done: MessageCompleted) -> None:
    """The completed message is the fold of the stream: its text and every tool call, completed."""
    calls = [e for e in events if isinstance(e, ToolCallCompleted)]
    assert done.message.content == "".join(e.delta for e in events if isinstance(e, TextDelta))
    assert [c.id for c in done.message.tool_calls] == [c.id for c in calls]
    assert {e.id for e in events if isinstance(e, ToolCallStarted)} == {c.id for c in calls}
    assert not (calls and done.finish_reason == "stop"), "stop is promoted to tool_calls"


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_mapper_fuzz(name: str) -> None:
    vocab = VOCABULARIES[name]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(stream=event_streams(vocab))
    def run(stream: list[SSEEvent]) -> None:
        events, error = drive(vocab.mapper, stream)
        check_events(events, error)

    run()


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_mapper_fixtures_complete(name: str) -> None:
    """Sanity check of the driver: the complete fixtures map without an error."""
    vocab = VOCABULARIES[name]
    for fixture in vocab.fixtures:
        events, error = drive(vocab.mapper, fixture_frames(fixture))
        check_events(events, error)
        assert (error is None) == ("error" not in fixture and "failed" not in fixture), fixture


def frames(*events: tuple[str, dict[str, Any]]) -> list[SSEEvent]:
    return [SSEEvent(name, json.dumps(data)) for name, data in events]


BLOCK = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
#: Streams the fuzzer broke mappers with (each once crashed or emitted an invalid sequence).
FINDINGS = [
    pytest.param("gemini", frames(("message", {"error": {"code": False}})), False, id="gemini-bool-code"),
    pytest.param(
        "anthropic",
        frames(("content_block_start", {"index": 0, "content_block": BLOCK}), ("message_stop", {})),
        True,
        id="anthropic-no-message-start-unstopped-block",
    ),
    pytest.param(
        "anthropic",
        frames(
            ("message_start", {"message": {}}),
            ("message_start", {"message": {}}),
            ("content_block_start", {"index": 0, "content_block": BLOCK}),
            ("content_block_start", {"index": 0, "content_block": {**BLOCK, "id": "toolu_2"}}),
            ("message_stop", {}),
        ),
        True,
        id="anthropic-repeated-starts",
    ),
]


@pytest.mark.parametrize(("name", "stream", "completes"), FINDINGS)
def test_mapper_fuzz_findings(name: str, stream: list[SSEEvent], completes: bool) -> None:
    events, error = drive(VOCABULARIES[name].mapper, stream)
    check_events(events, error)
    assert (error is None) == completes, error


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_mapper_deep_nesting_is_malformed_event(name: str) -> None:
    """JSON nested deeper than any parser's recursion limit is a malformed frame, not a crash."""
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    _, error = drive(VOCABULARIES[name].mapper, [SSEEvent("message", deep)])
    assert isinstance(error, allm.StreamError) and error.reason == "malformed_event", error
    assert error.event_index == 1
    assert parse_arguments(deep) == {}  # tool arguments that deep are not a JSON object we keep


# -- end to end through the emulator ---------------------------------------------------------------
ROUTES = {"chat": ("openai", {}), "responses": ("responses", {"endpoint": "responses"})}
ROUTES |= {"anthropic": ("anthropic", {}), "gemini": ("gemini", {})}


@pytest.fixture(scope="module")
def served() -> Iterator[ProviderEmulator]:
    with ProviderEmulator().running() as emu:
        yield emu


def encode(events: list[SSEEvent]) -> bytes:
    out = []
    for event in events:
        lines = [f"event: {event.event}"] if event.event != "message" else []
        lines += [f"data: {line}" for line in event.data.split("\n")]
        out.append("\n".join(lines) + "\n\n")
    return "".join(out).encode()


def subscribe(engine: allm.Engine) -> Recording:
    """Subscribe from synchronous code (the library's background loop) and wait for the end."""
    request = allm.request([allm.user("fuzz")])
    events = allm.stream_generate(engine, request, include_raw_chunks=True, stream_timeout=10)
    return record_sync(events, timeout=20)


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_end_to_end_fuzz(served: ProviderEmulator, name: str) -> None:
    route, opts = ROUTES[name]
    url = served.base_url(route)
    engine = allm.Engine(
        adapter="openai" if route in ("openai", "responses") else route,
        adapter_opts={"base_url": url, "api_key": "fuzz-key-0123456789", **opts},
        model="emulated-model",
    )
    vocab = VOCABULARIES[name]

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        body=event_streams(vocab).map(encode) | sse_bytes(),
        rechunk=st.none() | st.integers(0, 1000),
    )
    def run(body: bytes, rechunk: int | None) -> None:
        served.enqueue(Reply(body=body, rechunk_seed=rechunk, max_chunk=16))
        seen = subscribe(engine)
        assert seen.completed != (seen.error is not None) and not seen.late
        if seen.error is not None:
            assert isinstance(seen.error, TYPED), repr(seen.error)
            assert seen.error.reason != "unknown", repr(seen.error)
        check_events(seen.events, seen.error)

    run()
