"""Marble tests of the browser-protocol operators on the Fake, in virtual time.

Each diagram is a Fake script (``script_from_marbles``); the frames are recorded on a
``TestScheduler`` and compared as ``(time, label)`` pairs, so the order *and* the moment
of every chunk is asserted.
"""

from __future__ import annotations

import json
from typing import Any

from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rx_allm as allm
from rx_allm.events import MessageCompleted, MessageStarted, RawChunk, TextCompleted, TextDelta
from rx_allm.models import Message
from rx_allm.testing import CleanupCounter, fake_engine, record_events, script_from_marbles
from rx_allm.ui import ag_ui_frames, ag_ui_sse, ai_sdk_frames, ai_sdk_sse

CALL = ("tool_call", {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}})
USAGE = ("usage", {"input_tokens": 12, "output_tokens": 5})


def events(marbles: str, values: dict[str, Any] | None = None, **opts: Any) -> Any:
    engine = fake_engine(script_from_marbles(marbles, values, finish=opts.pop("finish", "stop")))
    return allm.stream_generate(engine, allm.request([allm.user("hi")]), **opts)


def label(chunk: dict[str, Any]) -> str:
    detail = (
        chunk.get("delta")
        or chunk.get("inputTextDelta")
        or chunk.get("toolName")
        or chunk.get("toolCallName")
    )
    return f"{chunk['type']}:{detail}" if detail else str(chunk["type"])


def frames_timeline(source: Any) -> list[tuple[float, str]]:
    records = record_events(source)
    assert records[-1].kind == "C", records[-1]
    return [(r.time, label(r.value)) for r in records if r.kind == "N"]


def chunks(source: Any) -> list[dict[str, Any]]:
    return list(source.pipe(ops.to_list()).run())


def test_ai_sdk_text_stream_in_virtual_time() -> None:
    assert frames_timeline(ai_sdk_frames(events("-a-b-|", {"a": "Hel", "b": "lo"}))) == [
        (0.0, "start"),
        (0.0, "start-step"),
        (1.0, "text-start"),
        (1.0, "text-delta:Hel"),
        (3.0, "text-delta:lo"),
        (5.0, "text-end"),
        (5.0, "finish-step"),
        (5.0, "finish"),
    ]


def test_ai_sdk_tool_call_finish_reason_and_usage() -> None:
    out = chunks(
        ai_sdk_frames(events("-a-t-u|", {"a": "Let me look.", "t": CALL, "u": USAGE}, finish="tool_calls"))
    )
    types = [c["type"] for c in out]
    assert types == [
        "start",
        "start-step",
        "text-start",
        "text-delta",
        "text-end",
        "tool-input-start",
        "tool-input-available",
        "finish-step",
        "finish",
    ]
    assert out[5] == {"type": "tool-input-start", "toolCallId": "call_1", "toolName": "get_weather"}
    assert out[6]["input"] == {"city": "Paris"}
    assert out[-1] == {
        "type": "finish",
        "finishReason": "tool-calls",
        "messageMetadata": {"usage": {"input_tokens": 12, "output_tokens": 5}},
    }
    assert out[2]["id"] == out[3]["id"] == out[4]["id"]  # a fallback id when the adapter gives none


def test_ai_sdk_streams_tool_input_deltas() -> None:
    script = [
        ("raw_chunk", "noise", {}),
        CALL,
    ]
    engine = fake_engine(
        [
            ("tool_call_delta", {"id": "call_1", "arguments_delta": "{}"}),  # before its start: skipped
            *script,
            ("finish", "tool_calls"),
        ]
    )
    out = chunks(ai_sdk_frames(allm.stream_generate(engine, allm.request([allm.user("x")]))))
    assert [c["type"] for c in out if c["type"].startswith("tool")] == [
        "tool-input-start",
        "tool-input-available",
    ]


def test_ai_sdk_reasoning_deltas_and_text_ids() -> None:
    source = _from_events(
        MessageStarted(),
        RawChunk(kind="reasoning_delta", data={"id": "r0", "delta": "think"}),
        RawChunk(kind="reasoning_delta", data={"id": "r0", "delta": "ing"}),
        TextDelta(id="t1", delta="A"),
        TextDelta(id="t2", delta="B"),
        TextCompleted(id="t2", text="B"),
        MessageCompleted(message=Message(role="assistant", content="AB"), finish_reason="stop"),
    )
    out = chunks(ai_sdk_frames(source))
    assert [label(c) for c in out] == [
        "start",
        "start-step",
        "reasoning-start",
        "reasoning-delta:think",
        "reasoning-delta:ing",
        "reasoning-end",
        "text-start",
        "text-delta:A",
        "text-end",
        "text-start",
        "text-delta:B",
        "text-end",
        "finish-step",
        "finish",
    ]
    assert {c["id"] for c in out if c["type"].startswith("text")} == {"txt-1-t1", "txt-1-t2"}
    assert out[2]["id"] == out[5]["id"]


def test_ai_sdk_error_is_one_error_chunk_then_a_clean_end() -> None:
    records = record_events(ai_sdk_frames(events("-a-#", {"a": "partial"})))
    assert [(r.time, r.kind) for r in records][-3:] == [(3.0, "N"), (3.0, "N"), (3.0, "C")]
    closing = records[-2].value
    assert closing["type"] == "error"
    assert closing["errorText"].startswith("provider_unavailable: ")
    assert records[-3].value == {"type": "text-end", "id": records[2].value["id"]}


def test_error_text_never_holds_a_key() -> None:
    engine = fake_engine(
        [
            ("text", "x"),
            ("error", {"reason": "authentication_failed", "message": "bad key sk-proj-abcdef1234567890"}),
        ]
    )
    out = chunks(ai_sdk_frames(allm.stream_generate(engine, allm.request([allm.user("x")]))))
    assert "sk-proj" not in json.dumps(out)
    assert out[-1]["errorText"].startswith("authentication_failed: ")


def test_a_cancelled_stream_is_an_abort() -> None:
    engine = fake_engine([("text", "x"), ("stream_error", "cancelled", {})])
    out = chunks(ai_sdk_frames(allm.stream_generate(engine, allm.request([allm.user("x")]))))
    assert out[-1]["type"] == "abort"
    agui = chunks(
        ag_ui_frames(allm.stream_generate(engine, allm.request([allm.user("x")])), thread_id="t", run_id="r")
    )
    assert agui[-1]["outcome"] == {"type": "cancelled"}


def test_disposing_the_frames_disposes_the_fake() -> None:
    scheduler = TestScheduler()
    cleanup = CleanupCounter(clock=lambda: scheduler.clock)
    engine = fake_engine(script_from_marbles("-a-b-c-d-|"), cleanup=cleanup)
    source = ai_sdk_frames(allm.stream_generate(engine, allm.request([allm.user("x")])))
    records = record_events(source, scheduler, dispose_at=4.0)
    assert [label(r.value) for r in records] == [
        "start",
        "start-step",
        "text-start",
        "text-delta:a",
        "text-delta:b",
    ]
    assert cleanup.ends == [("disposed", 4.0)]


def test_ai_sdk_sse_bytes_end_with_done() -> None:
    body = b"".join(chunks(ai_sdk_sse(events("a|", {"a": "hi"}))))
    frames = body.split(b"\n\n")
    assert frames[-2:] == [b"data: [DONE]", b""]
    assert all(f.startswith(b"data: ") for f in frames[:-1])
    assert json.loads(frames[0][6:]) == {"type": "start"}


def test_ai_sdk_start_carries_id_and_metadata() -> None:
    out = chunks(ai_sdk_frames(events("|"), message_id="m1", metadata={"provider": "fake", "model": None}))
    assert out[0] == {
        "type": "start",
        "messageId": "m1",
        "messageMetadata": {"provider": "fake", "model": None},
    }
    assert out[-1] == {"type": "finish", "finishReason": "stop"}  # no usage reported: none invented


def test_ag_ui_text_and_tool_call_in_virtual_time() -> None:
    source = ag_ui_frames(
        events("-a-t|", {"a": "Hi", "t": CALL}, finish="tool_calls"), thread_id="th", run_id="run"
    )
    assert frames_timeline(source) == [
        (0.0, "RUN_STARTED"),
        (0.0, "STEP_STARTED"),
        (1.0, "TEXT_MESSAGE_START"),
        (1.0, "TEXT_MESSAGE_CONTENT:Hi"),
        (3.0, "TEXT_MESSAGE_END"),
        (3.0, "TOOL_CALL_START:get_weather"),
        (3.0, 'TOOL_CALL_ARGS:{"city": "Paris"}'),
        (3.0, "TOOL_CALL_END"),
        (4.0, "STEP_FINISHED"),
        (4.0, "RUN_FINISHED"),
    ]


def test_ag_ui_ids_usage_and_error() -> None:
    out = chunks(ag_ui_frames(events("a-u|", {"a": "Hi", "u": USAGE}), thread_id="th", run_id="run"))
    assert out[0] == {"type": "RUN_STARTED", "threadId": "th", "runId": "run"}
    start = out[2]
    assert start["type"] == "TEXT_MESSAGE_START" and start["role"] == "assistant"
    assert start["messageId"].startswith("run-1-")
    assert out[-1]["usage"] == [{"inputTokens": 12, "outputTokens": 5}]
    assert out[-1]["result"] == {"finishReason": "stop"}

    failed = chunks(ag_ui_frames(events("a#", {"a": "Hi"}), thread_id="th", run_id="run"))
    assert failed[-2]["type"] == "TEXT_MESSAGE_END"
    assert failed[-1]["type"] == "RUN_ERROR" and failed[-1]["code"] == "provider_unavailable"
    assert failed[-1]["message"].startswith("provider_unavailable: ")


def test_ag_ui_reasoning_and_sse() -> None:
    source = _from_events(
        MessageStarted(),
        RawChunk(kind="reasoning_delta", data={"id": None, "delta": "hmm"}),
        TextDelta(delta="ok"),
        MessageCompleted(message=Message(role="assistant", content="ok"), finish_reason="stop"),
    )
    out = chunks(ag_ui_frames(source, thread_id="t", run_id="r"))
    assert [c["type"] for c in out][2:8] == [
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_END",
        "REASONING_END",
        "TEXT_MESSAGE_START",
    ]
    body = b"".join(chunks(ag_ui_sse(source, thread_id="t", run_id="r")))
    assert body.count(b"data: ") == len(out) and b"[DONE]" not in body


def _from_events(*items: Any) -> Any:
    import reactivex

    return reactivex.from_iterable(items)


@allm.tool
def add(a: int, b: int = 2) -> int:
    """Add two integers."""
    return a + b


def two_step_chat() -> Any:
    call = ("tool_call", {"id": "c1", "name": "add", "arguments": {"a": 1}})
    step1 = script_from_marbles("-a-|", {"a": call}, finish="tool_calls")
    step2 = script_from_marbles("--x-|", {"x": "three"})
    engine = allm.Engine(adapter="fake", adapter_opts={"scripts": [step1, step2]})
    return allm.stream_chat(engine, "add 1 and 2", tools=[add])


def test_ai_sdk_chat_steps_tool_output_in_virtual_time() -> None:
    records = record_events(ai_sdk_frames(two_step_chat()), TestScheduler())
    assert [(r.time, label(r.value)) for r in records if r.kind == "N"] == [
        (0.0, "start"),
        (0.0, "start-step"),
        (1.0, "tool-input-start:add"),
        (1.0, "tool-input-available:add"),
        (3.0, "tool-output-available"),
        (3.0, "finish-step"),
        (3.0, "start-step"),
        (5.0, "text-start"),
        (5.0, "text-delta:three"),
        (7.0, "text-end"),
        (7.0, "finish-step"),
        (7.0, "finish"),
    ]
    assert records[4].value == {"type": "tool-output-available", "toolCallId": "c1", "output": 3}
    assert records[-2].value == {"type": "finish", "finishReason": "stop"}
    assert records[-1].kind == "C"


def test_ag_ui_chat_tool_result_in_virtual_time() -> None:
    records = record_events(ag_ui_frames(two_step_chat(), thread_id="t", run_id="r"), TestScheduler())
    assert [(r.time, label(r.value)) for r in records if r.kind == "N"] == [
        (0.0, "RUN_STARTED"),
        (0.0, "STEP_STARTED"),
        (1.0, "TOOL_CALL_START:add"),
        (1.0, 'TOOL_CALL_ARGS:{"a": 1}'),
        (1.0, "TOOL_CALL_END"),
        (3.0, "TOOL_CALL_RESULT"),
        (3.0, "STEP_FINISHED"),
        (3.0, "STEP_STARTED"),
        (5.0, "TEXT_MESSAGE_START"),
        (5.0, "TEXT_MESSAGE_CONTENT:three"),
        (7.0, "TEXT_MESSAGE_END"),
        (7.0, "STEP_FINISHED"),
        (7.0, "RUN_FINISHED"),
    ]
    result = records[5].value
    assert result == {
        "type": "TOOL_CALL_RESULT",
        "messageId": "r-result-c1",
        "toolCallId": "c1",
        "content": "3",
        "role": "tool",
    }


def test_messages_from_ai_sdk_splits_steps_and_answers_calls() -> None:
    from rx_allm.ui import messages_from_ai_sdk

    body = {
        "messages": [
            {"id": "s", "role": "system", "parts": [{"type": "text", "text": "be brief"}]},
            {"id": "u", "role": "user", "parts": [{"type": "text", "text": "add 1 and 2"}]},
            {
                "id": "a",
                "role": "assistant",
                "parts": [
                    {"type": "step-start"},
                    {"type": "reasoning", "text": "hmm"},
                    {"type": "text", "text": "Adding."},
                    {
                        "type": "tool-add",
                        "toolCallId": "c1",
                        "state": "output-available",
                        "input": {"a": 1},
                        "output": 3,
                    },
                    {"type": "tool-add", "toolCallId": "c2", "state": "input-available", "input": {"a": 5}},
                    {"type": "step-start"},
                    {"type": "text", "text": "It is 3."},
                ],
            },
        ]
    }
    thread = messages_from_ai_sdk(json.dumps(body))
    assert [(m.role, m.text) for m in thread.messages] == [
        ("system", "be brief"),
        ("user", "add 1 and 2"),
        ("assistant", "Adding."),
        ("tool", "3"),
        ("assistant", "It is 3."),
    ]
    assert thread.messages[2].tool_calls[0].model_dump(include={"id", "name", "arguments"}) == {
        "id": "c1",
        "name": "add",
        "arguments": {"a": 1},
    }
    assert thread.messages[3].tool_call_id == "c1"


def test_reasoning_completed_closes_the_reasoning_block() -> None:
    source = _from_events(
        MessageStarted(),
        RawChunk(kind="reasoning_delta", data={"id": "r", "delta": "a"}),
        RawChunk(kind="reasoning_completed", data={"id": "r"}),
        RawChunk(kind="reasoning_delta", data={"id": "r2", "delta": "b"}),
        MessageCompleted(message=Message(role="assistant", content=""), finish_reason="stop"),
    )
    assert [label(c) for c in chunks(ai_sdk_frames(source))][2:8] == [
        "reasoning-start",
        "reasoning-delta:a",
        "reasoning-end",
        "reasoning-start",
        "reasoning-delta:b",
        "reasoning-end",
    ]


def test_sse_bytes_are_the_chunks_compact_json() -> None:
    from rx_allm.ui import SSE_DONE, sse_data

    source = _from_events(
        MessageStarted(),
        RawChunk(kind="reasoning_delta", data={"id": "r", "delta": 'quote " and \\ and é'}),
        TextDelta(id="t", delta="line\nbreak"),
        TextDelta(id="t", delta=" more"),
        allm.ToolCallStarted(id="c", name="f"),
        allm.ToolCallDelta(id="c", arguments_delta='{"a":'),
        allm.ToolCallDelta(id="c", arguments_delta=" 1}"),
        allm.ToolCallCompleted(id="c", name="f", arguments={"a": 1}, raw_arguments='{"a": 1}'),
        MessageCompleted(message=Message(role="assistant", content=""), finish_reason="tool_calls"),
    )
    expected = b"".join(sse_data(c) for c in chunks(ai_sdk_frames(source))) + SSE_DONE
    assert b"".join(chunks(ai_sdk_sse(source))) == expected
    agui = b"".join(sse_data(c) for c in chunks(ag_ui_frames(source, thread_id="t", run_id="r")))
    assert b"".join(chunks(ag_ui_sse(source, thread_id="t", run_id="r"))) == agui
    for frame in expected.split(b"\n\n")[:-2]:
        data = frame[len(b"data: ") :].decode()
        assert data == json.dumps(json.loads(data), ensure_ascii=False, separators=(",", ":"))


@allm.tool
def confirm(action: str) -> str:
    """Ask the user before acting."""
    raise allm.AskUser(f"May I {action}?")


def test_ask_user_becomes_a_data_part_and_ag_ui_custom_event() -> None:
    call = ("tool_call", {"id": "c7", "name": "confirm", "arguments": {"action": "delete it"}})
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [call, ("finish", "tool_calls")]})
    source = allm.stream_chat(engine, "clean up", tools=[confirm])
    ask = [c for c in chunks(ai_sdk_frames(source)) if c["type"].startswith("data-")]
    assert ask == [
        {
            "type": "data-ask-user",
            "id": "c7",
            "data": {"toolCallId": "c7", "toolName": "confirm", "question": "May I delete it?"},
        }
    ]
    custom = [c for c in chunks(ag_ui_frames(source, thread_id="t", run_id="r")) if c["type"] == "CUSTOM"]
    assert custom == [
        {
            "type": "CUSTOM",
            "name": "ask_user",
            "value": {"toolCallId": "c7", "toolName": "confirm", "question": "May I delete it?"},
        }
    ]


@allm.tool
def broken(x: int) -> int:
    """Always fails."""
    raise RuntimeError("disk on fire")


def test_a_failed_tool_is_a_tool_output_error() -> None:
    call = ("tool_call", {"id": "c8", "name": "broken", "arguments": {"x": 1}})
    engine = allm.Engine(
        adapter="fake",
        adapter_opts={"scripts": [[call, ("finish", "tool_calls")], [("text", "sorry"), ("finish", "stop")]]},
    )
    out = chunks(ai_sdk_frames(allm.stream_chat(engine, "go", tools=[broken])))
    errors = [c for c in out if c["type"] == "tool-output-error"]
    assert len(errors) == 1 and errors[0]["toolCallId"] == "c8"
    assert "disk on fire" in errors[0]["errorText"]
    assert not any(c["type"] == "tool-output-available" for c in out)
