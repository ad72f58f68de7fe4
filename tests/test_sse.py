"""Tests of rx_allm._sse: WHATWG event-stream rules, chunking independence, limits."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rx_allm._sse import SSEDecoder, SSEEvent
from rx_allm.errors import StreamError

WIRE = Path(__file__).parent / "fixtures" / "wire"
FIXTURES = {path.name: path.read_bytes() for path in sorted(WIRE.glob("*.sse"))}
BOM = b"\xef\xbb\xbf"

#: Events per fixture, counted by hand from the files (one `data:` line per event).
EVENT_COUNTS = {
    "anthropic_overloaded_error.sse": 6,
    "anthropic_text.sse": 11,
    "anthropic_thinking.sse": 16,
    "anthropic_tool_use.sse": 14,
    "gemini_function_call.sse": 2,
    "gemini_text.sse": 3,
    "openai_midstream_error.sse": 4,
    "openai_text.sse": 8,
    "openai_tool_calls.sse": 11,
    "openai_usage_chunk.sse": 9,
    "responses_failed.sse": 6,
    "responses_function_call.sse": 15,
    "responses_text.sse": 13,
}


def decode(*chunks: bytes, max_event_bytes: int | None = None) -> list[SSEEvent]:
    decoder = SSEDecoder(max_event_bytes)
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    decoder.check()
    return events


def split_at(payload: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(payload)]
    return [payload[start:end] for start, end in itertools.pairwise(bounds)]


def bytewise(payload: bytes) -> list[bytes]:
    return [payload[i : i + 1] for i in range(len(payload))]


# -- fixtures ----------------------------------------------------------------


def test_all_fixtures_are_covered() -> None:
    assert set(FIXTURES) == set(EVENT_COUNTS)


@pytest.mark.parametrize("name", sorted(EVENT_COUNTS))
def test_fixture_decodes_whole(name: str) -> None:
    payload = FIXTURES[name]
    decoder = SSEDecoder()
    events = decoder.feed(payload)
    assert len(events) == EVENT_COUNTS[name]
    assert not decoder.has_partial
    decoder.check()
    for event in events:
        assert "\r" not in event.data and "\n" not in event.data
        assert event.data == "[DONE]" or isinstance(json.loads(event.data), dict)
        assert event.id is None and event.retry is None


@pytest.mark.parametrize("name", sorted(EVENT_COUNTS))
def test_fixture_bytewise_equals_whole(name: str) -> None:
    payload = FIXTURES[name]
    assert decode(*bytewise(payload)) == decode(payload)


@pytest.mark.parametrize("name", ["openai_text.sse", "gemini_text.sse", "anthropic_text.sse"])
def test_fixture_every_split_position(name: str) -> None:
    payload = FIXTURES[name]
    whole = decode(payload)
    for cut in range(len(payload) + 1):
        assert decode(payload[:cut], payload[cut:]) == whole, cut


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(FIXTURES)), data=st.data())
def test_fixture_random_rechunking(name: str, data: st.DataObject) -> None:
    payload = FIXTURES[name]
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=40))
    assert decode(*split_at(payload, cuts)) == decode(payload)


def test_openai_text_content() -> None:
    events = decode(FIXTURES["openai_text.sse"])
    assert {event.event for event in events} == {"message"}
    assert events[-1].data == "[DONE]"
    chunks = [json.loads(event.data) for event in events[:-1]]
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text == "Bonjour ! Ça va ? 👋"


def test_responses_text_event_names() -> None:
    events = decode(FIXTURES["responses_text.sse"])
    assert [event.event for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 5,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert all(json.loads(event.data)["type"] == event.event for event in events)


def test_anthropic_text_event_names() -> None:
    events = decode(FIXTURES["anthropic_text.sse"])
    assert [event.event for event in events] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_gemini_crlf_content() -> None:
    events = decode(FIXTURES["gemini_text.sse"])
    parts = [json.loads(event.data)["candidates"][0]["content"]["parts"] for event in events]
    assert "".join(part.get("text", "") for chunk in parts for part in chunk) == "Bonjour ! Ça va ? 👋"


# -- line ends ---------------------------------------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_line_end_forms(eol: str) -> None:
    text = f"event: a{eol}data: x{eol}data: y{eol}{eol}data: z{eol}{eol}"
    expected = [SSEEvent("a", "x\ny"), SSEEvent("message", "z")]
    payload = text.encode()
    assert decode(payload) == expected
    assert decode(*bytewise(payload)) == expected


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the LF completes the CRLF: it is not a blank line
    assert decoder.feed(b"") == []
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"") == []  # an empty chunk keeps the pending CR
    assert decoder.feed(b"\n\r") == [SSEEvent("message", "a\nb")]
    assert decoder.feed(b"\n") == []
    assert not decoder.has_partial


def test_lone_cr_dispatches_without_waiting_for_next_byte() -> None:
    assert SSEDecoder().feed(b"data: a\r\r") == [SSEEvent("message", "a")]


def test_cr_cr_lf_is_two_line_ends() -> None:
    assert decode(b"data: a\r\r\n") == [SSEEvent("message", "a")]
    assert decode(b"data: a\r", b"\r\n") == [SSEEvent("message", "a")]
    assert decode(b"data: a\r\n\n") == [SSEEvent("message", "a")]


def test_mixed_line_ends() -> None:
    payload = b"data: a\rdata: b\ndata: c\r\n\rdata: d\n\r\n"
    expected = [SSEEvent("message", "a\nb\nc"), SSEEvent("message", "d")]
    assert decode(payload) == expected
    assert decode(*bytewise(payload)) == expected


# -- BOM -------------------------------------------------------------------------


def test_bom_stripped() -> None:
    assert decode(BOM + b"data: x\n\n") == [SSEEvent("message", "x")]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_bom_split_across_chunks(cut: int) -> None:
    payload = BOM + b"data: x\n\n"
    assert decode(payload[:cut], payload[cut:]) == [SSEEvent("message", "x")]
    assert decode(*bytewise(payload)) == [SSEEvent("message", "x")]


def test_bom_stripped_only_once() -> None:
    # A second BOM belongs to the first line: the field name becomes "\ufeffdata", an unknown field.
    assert decode(BOM + BOM + b"data: x\n\n") == []
    assert decode(BOM, BOM, b"data: x\n\n") == []
    assert decode(b"data: a\n\n", BOM + b"data: b\n\n") == [SSEEvent("message", "a")]
    assert decode(BOM + b"data: \xef\xbb\xbfx\n\n") == [SSEEvent("message", "\ufeffx")]


def test_pending_bom_prefix_counts_as_partial() -> None:
    decoder = SSEDecoder()
    decoder.feed(BOM[:2])
    assert decoder.has_partial
    decoder.feed(BOM[2:])
    assert not decoder.has_partial


# -- fields -------------------------------------------------------------------


def test_multi_line_data_and_value_spacing() -> None:
    payload = b"data: a\ndata:\ndata:  b\ndata\ndata:c: d\n\n"
    assert decode(payload) == [SSEEvent("message", "a\n\n b\n\nc: d")]


def test_comments_ignored() -> None:
    payload = b": hello\n:\ndata: x\n: data: y\n\n: ping\n\n"
    assert decode(payload) == [SSEEvent("message", "x")]


def test_unknown_and_case_different_fields_ignored() -> None:
    assert decode(b"Data: x\nDATA: y\nfoo: z\n data: w\ndata : v\n\n") == []


def test_empty_event_name_means_message() -> None:
    assert decode(b"event\ndata: x\n\nevent:\ndata: y\n\n") == [
        SSEEvent("message", "x"),
        SSEEvent("message", "y"),
    ]


def test_last_field_wins() -> None:
    assert decode(b"event: a\nevent: b\nid: 1\nid: 2\ndata: x\n\n") == [SSEEvent("b", "x", "2")]


def test_id_persists_and_nul_ids_are_ignored() -> None:
    payload = (
        b"id: 1\ndata: a\n\n"
        b"data: b\n\n"
        b"id: 7\n\n"  # not dispatched, but the last event id is still updated
        b"data: c\n\n"
        b"id: x\x00y\ndata: d\n\n"
        b"id\ndata: e\n\n"
    )
    assert [event.id for event in decode(payload)] == ["1", "1", "7", "7", ""]


def test_retry_parsing() -> None:
    payload = (
        b"retry: 3000\ndata: a\n\n"
        b"data: b\n\n"
        b"retry: 007\ndata: c\n\n"
        b"retry: 12a\ndata: d\n\n"
        b"retry: -1\ndata: e\n\n"
        b"retry:\ndata: f\n\n"
        b"retry: \xd9\xa1\xd9\xa2\ndata: g\n\n"  # Arabic-Indic digits are not ASCII digits
        b"retry:  5\ndata: h\n\n"
        b"retry: 9\n\ndata: i\n\n"  # a retry of an undispatched block does not leak into the next
    )
    assert [event.retry for event in decode(payload)] == [3000, None, 7, None, None, None, None, None, None]


def test_event_without_data_is_not_dispatched_and_resets_type() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: ping\n\n") == []
    assert decoder.feed(b": keepalive\n\n") == []
    assert decoder.feed(b"data: x\n\n") == [SSEEvent("message", "x")]


def test_data_can_hold_separator_like_unicode() -> None:
    value = "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg\x00h"
    assert decode(f"data: {value}\n\n".encode()) == [SSEEvent("message", value)]


# -- end of stream --------------------------------------------------------------


def test_partial_event_at_eof_is_discarded() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [SSEEvent("message", "a")]
    assert decoder.has_partial
    decoder.check()
    assert decoder.has_partial


def test_partial_line_at_eof_is_discarded() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == [SSEEvent("message", "a")]
    assert decoder.has_partial
    decoder.check()


def test_complete_stream_has_no_partial() -> None:
    decoder = SSEDecoder()
    assert not decoder.has_partial
    decoder.feed(b"data: a\n\n")
    assert not decoder.has_partial
    decoder.feed(b": comment")
    assert decoder.has_partial


# -- UTF-8 ------------------------------------------------------------------------


def test_utf8_character_split_across_chunks() -> None:
    payload = "data: Ça 👋\n\n".encode()
    expected = [SSEEvent("message", "Ça 👋")]
    for cut in range(len(payload) + 1):
        assert decode(payload[:cut], payload[cut:]) == expected
    assert decode(*bytewise(payload)) == expected


@pytest.mark.parametrize(
    "payload",
    [
        b"data: \xff\n\n",
        b"data: \xc3\n\n",  # truncated sequence
        b"data: \xc0\xaf\n\n",  # overlong encoding
        b"data: \xed\xa0\x80\n\n",  # surrogate
        b": \xff\n\n",  # comments are decoded too
        b"event: \xfe\ndata: x\n\n",
        b"\xef\xbbdata: x\n\n",  # an incomplete BOM is not stripped
    ],
)
def test_invalid_utf8_raises(payload: bytes) -> None:
    with pytest.raises(StreamError) as info:
        decode(payload)
    assert info.value.reason == "malformed_event"
    assert "invalid UTF-8" in info.value.message


def test_invalid_utf8_raises_once_the_line_is_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: \xff") == []
    with pytest.raises(StreamError, match="invalid UTF-8"):
        decoder.feed(b"\n")


# -- limits ---------------------------------------------------------------------


def test_max_event_bytes_on_a_complete_line() -> None:
    with pytest.raises(StreamError, match="max_event_bytes=10") as info:
        decode(b"data: 0123456789abc\n\n", max_event_bytes=10)
    assert info.value.reason == "malformed_event"


def test_max_event_bytes_on_a_partial_line() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(StreamError, match="max_event_bytes=100"):
        decoder.feed(b"x" * 20)


def test_max_event_bytes_over_many_data_lines() -> None:
    with pytest.raises(StreamError, match="max_event_bytes"):
        decode(b"data: 1234\n" * 5, max_event_bytes=20)


def test_max_event_bytes_counts_bytes_not_characters() -> None:
    payload = "data: ÇÇÇÇÇÇ\n\n".encode()  # 13 characters, 19 bytes with the line end
    assert decode(payload, max_event_bytes=19) == [SSEEvent("message", "ÇÇÇÇÇÇ")]
    with pytest.raises(StreamError, match="max_event_bytes"):
        decode(payload, max_event_bytes=18)


def test_max_event_bytes_is_per_event_and_counts_every_line() -> None:
    block = b": a comment line\r\ndata: 12345\nid: 42\n\n"  # 17 + 12 + 7 = 36 bytes of lines
    payload = block * 100
    assert len(decode(payload, max_event_bytes=36)) == 100
    assert len(decode(*bytewise(payload), max_event_bytes=36)) == 100
    with pytest.raises(StreamError, match="max_event_bytes=35"):
        decode(payload, max_event_bytes=35)
    with pytest.raises(StreamError, match="max_event_bytes=35"):
        decode(*bytewise(payload), max_event_bytes=35)


def test_huge_line_in_64k_chunks() -> None:
    value = ("abcÇ👋" * (16 * 1024 * 1024 // 10)).encode()  # ~16 MB, multi-byte characters cut by chunks
    payload = b"data: " + value + b"\r\n\r\n"
    step = 64 * 1024
    decoder = SSEDecoder()
    events = [event for i in range(0, len(payload), step) for event in decoder.feed(payload[i : i + step])]
    assert len(events) == 1
    assert events[0].data.encode() == value
    assert not decoder.has_partial


# -- generated streams -------------------------------------------------------------

_SPECIAL = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x00", "\ufeff", "👋", "Ç", ":", " "]
_chars = st.one_of(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), st.sampled_from(_SPECIAL)
)
_values = st.text(_chars, max_size=12)
_digits = re.compile(r"[0-9]+")


@st.composite
def _field(draw: st.DrawFn, name: str, value: str) -> str:
    """Serialize one field in any of its equivalent spellings."""
    if value == "" and draw(st.booleans()):
        return name
    if value.startswith(" ") or draw(st.booleans()):
        return f"{name}: {value}"
    return f"{name}:{value}"


@st.composite
def event_streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """A serialized stream of blocks (some without data) and the events it must decode to."""
    lines: list[str] = []
    expected: list[SSEEvent] = []
    last_id: str | None = None
    for _ in range(draw(st.integers(0, 6))):
        data = draw(st.none() | st.lists(_values, min_size=1, max_size=4))
        event = draw(st.none() | _values)
        event_id = draw(st.none() | _values)
        retry = draw(st.none() | st.from_regex(r"[0-9]{1,6}", fullmatch=True) | _values)
        others = [f":{draw(_values)}" for _ in range(draw(st.integers(0, 2)))]
        unknown = draw(st.sampled_from(["", "foo", "Data", "ID", " data", "event ", "retry2"]))
        if unknown:
            others.append(draw(_field(unknown, draw(_values))))
        for name, value in (("event", event), ("id", event_id), ("retry", retry)):
            if value is not None:
                others.append(draw(_field(name, value)))
        others = list(draw(st.permutations(others)))
        data_lines = [draw(_field("data", value)) for value in data or []]
        while data_lines or others:
            source = data_lines if data_lines and (not others or draw(st.booleans())) else others
            lines.append(source.pop(0))
        lines.append("")

        if event_id is not None and "\0" not in event_id:
            last_id = event_id
        if data is not None:
            retry_value = int(retry) if retry is not None and _digits.fullmatch(retry) else None
            expected.append(SSEEvent(event or "message", "\n".join(data), last_id, retry_value))

    out = [BOM] if draw(st.booleans()) else []
    previous = "\n"
    for line in lines:
        eol = draw(st.sampled_from(["\n", "\r", "\r\n"]))
        if previous == "\r" and line == "" and eol == "\n":
            eol = "\r\n"  # CR then LF would read as one CRLF, swallowing this blank line
        out.append((line + eol).encode())
        previous = eol
    return b"".join(out), expected


@settings(max_examples=300, deadline=None)
@given(stream=event_streams(), data=st.data())
def test_generated_streams_any_chunking(stream: tuple[bytes, list[SSEEvent]], data: st.DataObject) -> None:
    payload, expected = stream
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=30))
    decoder = SSEDecoder()
    events = [event for chunk in split_at(payload, cuts) for event in decoder.feed(chunk)]
    assert events == expected
    assert not decoder.has_partial
    assert decode(payload) == expected
