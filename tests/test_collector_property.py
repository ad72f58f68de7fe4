"""The collector: ``generate`` equals folding ``stream_generate`` by hand; fold rules; iterate bridge."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rx_allm as allm
from rx_allm.collector import StreamCollector
from rx_allm.errors import AdapterError, StreamError
from rx_allm.events import (
    MessageCompleted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.models import Message, ToolCall, Usage
from rx_allm.runner import collect, generate, generate_sync, stream_generate

REQ = allm.request([allm.user("hello")])
FINISH_REASONS = ["stop", "length", "tool_calls", "content_filter", "error", "other", None]


def fake_engine(script: list[Any], cleanup: list[str] | None = None) -> allm.Engine:
    opts: dict[str, Any] = {"script": script}
    if cleanup is not None:
        opts["cleanup_observer"] = cleanup.append
    return allm.Engine(adapter="fake", adapter_opts=opts)


async def fold_by_hand(engine: allm.Engine, request: allm.Request) -> allm.Response:
    """Subscribe to ``stream_generate`` and fold every event with a StreamCollector."""
    collector = StreamCollector()
    done = asyncio.get_running_loop().create_future()

    def finish(error: Exception | None = None) -> None:
        if error is not None:
            collector.fail(error)
        if not done.done():
            done.set_result(None)

    stream_generate(engine, request).subscribe(on_next=collector.apply, on_error=finish, on_completed=finish)
    await done
    return collector.to_response()


def without_request_id(response: allm.Response) -> dict[str, Any]:
    data = response.model_dump()
    data.pop("request_id")
    return data


# -- property ----------------------------------------------------------------------
ids = st.sampled_from(["c1", "c2", "c3"])
small_json = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans(), st.none())
usage_dicts = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": st.integers(0, 1000),
        "output_tokens": st.integers(0, 1000),
        "total_tokens": st.integers(0, 2000),
        "cached_input_tokens": st.integers(0, 100),
        "reasoning_tokens": st.integers(0, 100),
    },
)
body_entries = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=5)),
    st.tuples(
        st.just("tool_call"),
        st.fixed_dictionaries(
            {
                "id": ids,
                "name": st.sampled_from(["lookup", "search"]),
                "arguments": st.dictionaries(st.sampled_from(["q", "n"]), small_json, max_size=2),
            }
        ),
    ),
    st.tuples(
        st.just("tool_call_delta"),
        st.fixed_dictionaries({"id": ids, "arguments_delta": st.text(min_size=1, max_size=4)}),
    ),
    st.tuples(st.just("usage"), usage_dicts),
    st.tuples(st.just("raw_chunk"), st.sampled_from(["meta", "log"]), small_json),
    st.tuples(st.just("raw_chunk"), st.just("usage"), usage_dicts),
    st.just(("delay", 0)),
    st.tuples(st.just("finish"), st.sampled_from(FINISH_REASONS)),
)
adapter_reasons = st.sampled_from(sorted(AdapterError.reasons))
terminal_entries = st.one_of(
    st.tuples(st.just("error"), st.one_of(adapter_reasons, st.just("not-a-reason"))),
    st.tuples(
        st.just("error"), st.fixed_dictionaries({"reason": adapter_reasons, "status": st.integers(400, 599)})
    ),
    st.tuples(st.just("error_event"), adapter_reasons, st.just({})),
    st.tuples(st.just("stream_error"), st.sampled_from(sorted(StreamError.reasons)), st.just({})),
)
scripts = st.tuples(st.lists(body_entries, max_size=12), st.one_of(st.none(), terminal_entries)).map(
    lambda parts: parts[0] + ([parts[1]] if parts[1] is not None else [])
)


def ends_with_error(script: list[Any]) -> bool:
    for entry in script:
        if entry[0] == "finish":
            return False
        if entry[0] in ("error", "error_event", "stream_error"):
            return True
    return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts)
def test_generate_equals_folding_stream_generate(script: list[Any]) -> None:
    engine = fake_engine(script)

    async def both() -> tuple[allm.Response, allm.Response]:
        return await generate(engine, REQ), await fold_by_hand(engine, REQ)

    generated, folded = asyncio.run(both())
    assert without_request_id(generated) == without_request_id(folded)
    if ends_with_error(script):
        assert generated.finish_reason == "error"
        assert isinstance(generated.error, (AdapterError, StreamError))
        assert not generated.ok
    else:
        assert generated.error is None
        assert generated.ok


# -- fold rules ----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_partial_output_kept_on_error() -> None:
    script = [
        ("text", "par"),
        ("tool_call", {"id": "c1", "name": "lookup", "arguments": {"q": "x"}}),
        ("tool_call_delta", {"id": "c2", "arguments_delta": '{"n": '}),
        ("text", "tial"),
        ("error", "rate_limited"),
        ("text", "never"),
    ]
    response = await generate(fake_engine(script), REQ, request_id="req-1")
    assert response.output_text == "partial"
    assert response.message.text == "partial"
    assert [c.id for c in response.tool_calls] == ["c1", "c2"]
    assert response.tool_calls[0] == ToolCall(
        id="c1", name="lookup", arguments={"q": "x"}, raw_arguments='{"q": "x"}'
    )
    assert response.tool_calls[1].raw_arguments == '{"n": '
    assert response.finish_reason == "error"
    assert isinstance(response.error, AdapterError)
    assert response.error.reason == "rate_limited"
    assert response.request_id == "req-1"
    assert not response.ok


@pytest.mark.asyncio
async def test_stream_error_is_kept_typed_on_the_response() -> None:
    response = await generate(
        fake_engine([("text", "x"), ("stream_error", "truncated", {"event_index": 2})]), REQ
    )
    assert isinstance(response.error, StreamError)
    assert response.error.reason == "truncated"
    assert response.error.event_index == 2
    assert response.output_text == "x"
    assert response.model_dump()["error"]["type"] == "StreamError"


def test_untyped_error_is_wrapped_as_stream_error_unknown() -> None:
    collector = StreamCollector()
    cause = RuntimeError("boom")
    collector.fail(cause)
    response = collector.to_response()
    assert isinstance(response.error, StreamError)
    assert response.error.reason == "unknown"
    assert response.error.cause is cause
    assert response.finish_reason == "error"


def test_text_completed_replaces_its_block() -> None:
    collector = StreamCollector()
    collector.apply(TextDelta(delta="he"))
    collector.apply(TextDelta(delta="lo"))
    assert collector.text == "helo"
    collector.apply(TextCompleted(text="hello"))
    assert collector.text == "hello"
    collector.apply(TextDelta(delta=" wor"))
    assert collector.text == "hello wor"
    collector.apply(TextCompleted(text=" world"))
    assert collector.text == "hello world"
    assert collector.to_response().output_text == "hello world"


def test_usage_chunk_replaces_usage() -> None:
    collector = StreamCollector()
    collector.apply(RawChunk(kind="usage", data=Usage(input_tokens=10, output_tokens=1)))
    collector.apply(RawChunk(kind="meta", data={"input_tokens": 99}))
    collector.apply(RawChunk(kind="usage", data=Usage(output_tokens=5)))
    usage = collector.to_response().usage
    assert usage == Usage(output_tokens=5)
    assert usage.input_tokens is None


def test_non_none_finish_reason_is_not_erased() -> None:
    collector = StreamCollector()
    collector.apply(
        MessageCompleted(
            message=Message(role="assistant", content="a"), finish_reason="length", metadata={"x": 1}
        )
    )
    collector.apply(
        MessageCompleted(
            message=Message(role="assistant", content="a"), finish_reason=None, metadata={"y": 2}
        )
    )
    response = collector.to_response()
    assert response.finish_reason == "length"
    assert response.metadata == {"x": 1, "y": 2}


def test_tool_calls_fold_in_first_seen_order() -> None:
    collector = StreamCollector()
    collector.apply(ToolCallStarted(id="b", name="second"))
    collector.apply(ToolCallStarted(id="a", name="first"))
    collector.apply(ToolCallDelta(id="b", arguments_delta='{"k"'))
    collector.apply(ToolCallDelta(id="b", arguments_delta=": 1}"))
    assert collector.to_response().tool_calls[0].raw_arguments == '{"k": 1}'
    collector.apply(ToolCallCompleted(id="b", name="second", arguments={"k": 1}, raw_arguments='{"k": 1}'))
    calls = collector.to_response().tool_calls
    assert [c.id for c in calls] == ["b", "a"]
    assert calls[0].arguments == {"k": 1}
    assert calls[1] == ToolCall(id="a", name="first")


def test_generate_sync_from_sync_code() -> None:
    engine = fake_engine([("text", "hi"), ("usage", {"output_tokens": 1}), ("finish", "stop")])
    response = generate_sync(engine, REQ, request_id="sync-1")
    assert response.output_text == "hi"
    assert response.finish_reason == "stop"
    assert response.usage == Usage(output_tokens=1)
    assert response.request_id == "sync-1"


def test_generate_sync_keeps_a_terminal_error() -> None:
    response = generate_sync(fake_engine([("text", "a"), ("error", "timeout")]), REQ)
    assert response.finish_reason == "error"
    assert isinstance(response.error, AdapterError)
    assert response.error.reason == "timeout"
    assert response.output_text == "a"


@pytest.mark.asyncio
async def test_generate_sync_refuses_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="generate"):
        generate_sync(fake_engine([("finish", "stop")]), REQ)


@pytest.mark.asyncio
async def test_cancelling_collect_disposes_the_subscription() -> None:
    cleanup: list[str] = []
    engine = fake_engine([("text", "a"), ("delay", 60), ("finish", "stop")], cleanup)
    task = asyncio.ensure_future(collect(stream_generate(engine, REQ)))
    await asyncio.sleep(0)  # let the task subscribe (no timing involved)
    assert cleanup == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleanup == ["disposed"]


# -- async-iterator bridge ---------------------------------------------------------------
@pytest.mark.asyncio
async def test_iterate_yields_events_in_order() -> None:
    cleanup: list[str] = []
    engine = fake_engine([("text", "a"), ("delay", 0), ("text", "b"), ("finish", "stop")], cleanup)
    types = [event.type async for event in allm.iterate(stream_generate(engine, REQ))]
    assert types == ["message_started", "text_delta", "text_delta", "text_completed", "message_completed"]
    assert cleanup == ["completed"]


@pytest.mark.asyncio
async def test_iterate_raises_the_terminal_error_from_anext() -> None:
    engine = fake_engine(
        [("text", "a"), ("delay", 0), ("error_event", "provider_unavailable", {"status": 503})]
    )
    seen: list[str] = []
    with pytest.raises(AdapterError) as info:
        async for event in allm.iterate(stream_generate(engine, REQ)):
            seen.append(event.type)
    assert seen == ["message_started", "text_delta"]
    assert info.value.reason == "provider_unavailable"
    assert info.value.status == 503


@pytest.mark.asyncio
async def test_iterate_break_disposes_the_subscription() -> None:
    cleanup: list[str] = []
    engine = fake_engine([("text", "a"), ("delay", 60), ("text", "b"), ("finish", "stop")], cleanup)
    seen: list[str] = []
    async for event in allm.iterate(stream_generate(engine, REQ)):
        seen.append(event.type)
        if event.type == "text_delta":
            break
    # nothing else holds the iterator: leaving the loop released it, which disposed it
    assert seen == ["message_started", "text_delta"]
    assert cleanup == ["disposed"]


@pytest.mark.asyncio
async def test_iterate_aclose_disposes_the_subscription() -> None:
    cleanup: list[str] = []
    engine = fake_engine([("text", "a"), ("delay", 60), ("finish", "stop")], cleanup)
    stream = allm.iterate(stream_generate(engine, REQ))
    first = await stream.__anext__()
    assert first.type == "message_started"
    assert cleanup == []
    await stream.aclose()
    assert cleanup == ["disposed"]
    await stream.aclose()  # idempotent
    assert cleanup == ["disposed"]
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


@pytest.mark.asyncio
async def test_iterate_async_with_disposes_on_exit() -> None:
    cleanup: list[str] = []
    engine = fake_engine([("text", "a"), ("delay", 60), ("finish", "stop")], cleanup)
    async with allm.iterate(stream_generate(engine, REQ)) as stream:
        event = await stream.__anext__()
        assert event.type == "message_started"
    assert cleanup == ["disposed"]


@pytest.mark.asyncio
async def test_iterate_is_lazy_until_first_anext() -> None:
    record: list[Any] = []
    cleanup: list[str] = []
    engine = allm.Engine(
        adapter="fake",
        adapter_opts={
            "script": [("text", "a"), ("finish", "stop")],
            "record": record,
            "cleanup_observer": cleanup.append,
        },
    )
    stream = allm.iterate(stream_generate(engine, REQ))
    assert len(record) == 1  # stream_generate called the adapter ...
    assert cleanup == []  # ... but nothing is subscribed yet
    assert (await stream.__anext__()).type == "message_started"
    await stream.aclose()
    assert cleanup == ["completed"]


def test_text_delta_content_survives_the_bridge() -> None:
    async def run() -> str:
        engine = fake_engine([("text", "a"), ("delay", 0), ("text", "β"), ("finish", "stop")])
        parts = []
        async for event in allm.iterate(stream_generate(engine, REQ, emit_text_deltas=True)):
            if isinstance(event, TextDelta):
                parts.append(event.delta)
        return "".join(parts)

    assert asyncio.run(run()) == "aβ"
