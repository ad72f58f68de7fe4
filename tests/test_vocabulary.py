"""One vocabulary across providers, over the emulator on real sockets.

Every provider gives the same events for the same scripted reply: text blocks with ids
and a ``text_completed`` each, reasoning as ``raw_chunk(kind="reasoning_delta")`` and
``Message.reasoning``, refusals in ``Message.refusal`` with ``finish_reason="content_filter"``,
usage whose ``output_tokens`` includes reasoning, and the documented metadata keys. The
request side sends an assistant message's reasoning back to the provider that produced
it (the emulator refuses follow-ups the real APIs refuse) and drops it for the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import THINKING_PARAMS, of_type
from helpers import emulated_engine as engine

import rx_allm as allm
from rx_allm import events as ev
from rx_allm.errors import AdapterError
from rx_allm.events import MessageCompleted, MessageStarted, RawChunk, TextCompleted, TextDelta
from rx_allm.models import Reasoning
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
PROVIDERS = ["openai", "responses", "anthropic", "gemini"]
KEY = "vocabulary-test-key-0123456789"
THINKING = "The user wants the weather. I should call the tool."
WEATHER = {"city": "Paris"}
_ADAPTER_NAME = {"openai": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}


async def run(
    emu: ProviderEmulator, provider: str, messages: list[allm.Message] | None = None, **params: Any
) -> tuple[list[allm.Event], allm.Response]:
    """The events of one stream (raw chunks included) and the Response they fold into."""
    collector = allm.StreamCollector()
    events: list[allm.Event] = []
    stream = allm.stream_generate(
        engine(emu, provider, **params),
        allm.request(messages or [allm.user("What is the weather in Paris?")]),
        include_raw_chunks=True,
        on_event=events.append,
    )
    response = await allm.collect(stream, collector)
    return events, response


def reasoning_deltas(events: list[allm.Event]) -> list[dict[str, Any]]:
    return [e.data for e in of_type(events, RawChunk) if e.kind == ev.REASONING_DELTA]


# -- text ids and text_completed ------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_text_blocks_have_ids_and_complete(emulator: ProviderEmulator, provider: str) -> None:
    emulator.enqueue(Reply(text="Sunny and mild in Paris today."))
    events, response = await run(emulator, provider)
    deltas, completed = of_type(events, TextDelta), of_type(events, TextCompleted)
    assert response.ok and response.output_text == "Sunny and mild in Paris today."
    assert len(deltas) >= 2 and all(d.id for d in deltas)
    assert len({d.id for d in deltas}) == 1
    assert [(c.id, c.text) for c in completed] == [(deltas[0].id, "Sunny and mild in Paris today.")]
    order = [type(e).__name__ for e in events]
    assert order.index("TextCompleted") > max(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert order.index("TextCompleted") < order.index("MessageCompleted")


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_text_before_a_tool_call_completes_first(emulator: ProviderEmulator, provider: str) -> None:
    emulator.enqueue(Reply(text="Let me check.", tool_calls=[ToolCallSpec("get_weather", WEATHER)]))
    events, response = await run(emulator, provider)
    (completed,) = of_type(events, TextCompleted)
    assert completed.text == "Let me check." and completed.id
    kinds = [e.type for e in events]
    assert kinds.index("text_completed") < kinds.index("tool_call_started")
    assert response.finish_reason == "tool_calls"


# -- metadata keys -------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_metadata_keys_are_the_same_for_every_provider(
    emulator: ProviderEmulator, provider: str
) -> None:
    emulator.enqueue(Reply(text="Hi there."))
    events, response = await run(emulator, provider)
    started, done = events[0], events[-1]
    assert isinstance(started, MessageStarted) and isinstance(done, MessageCompleted)
    assert started.metadata[ev.META_PROVIDER] == _ADAPTER_NAME[provider]
    assert started.metadata[ev.META_RESPONSE_ID]
    meta = done.metadata
    assert meta[ev.META_PROVIDER] == _ADAPTER_NAME[provider]
    assert meta[ev.META_RESPONSE_ID] == started.metadata[ev.META_RESPONSE_ID]
    assert meta[ev.META_MODEL]
    native = {"openai": "stop", "responses": "completed", "anthropic": "end_turn", "gemini": "STOP"}
    assert meta[ev.META_NATIVE_FINISH_REASON] == native[provider]
    for legacy in ("raw_finish_reason", "provider_id", "reasoning", "thinking", "thoughts"):
        assert legacy not in meta and legacy not in done.message.metadata
    assert response.metadata[ev.META_RESPONSE_ID] == meta[ev.META_RESPONSE_ID]


def test_metadata_key_constants() -> None:
    assert (ev.META_PROVIDER, ev.META_RESPONSE_ID, ev.META_MODEL, ev.META_NATIVE_FINISH_REASON) == (
        "provider",
        "response_id",
        "model",
        "native_finish_reason",
    )
    assert ev.THOUGHT_SIGNATURE == "thought_signature"
    assert (ev.REASONING_DELTA, ev.REASONING_COMPLETED, ev.REFUSAL_DELTA) == (
        "reasoning_delta",
        "reasoning_completed",
        "refusal_delta",
    )


# -- reasoning -----------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_reasoning_has_one_shape(emulator: ProviderEmulator, provider: str) -> None:
    emulator.enqueue(Reply(text="It is sunny.", thinking=THINKING))
    events, response = await run(emulator, provider, **THINKING_PARAMS[provider])
    deltas = reasoning_deltas(events)
    assert deltas and all(isinstance(d["id"], str) and d["id"] and d["delta"] for d in deltas)
    assert "".join(d["delta"] for d in deltas) == THINKING
    completed = [e.data for e in of_type(events, RawChunk) if e.kind == ev.REASONING_COMPLETED]
    assert [c["id"] for c in completed] == [deltas[0]["id"]]
    (reasoning,) = response.message.reasoning
    assert isinstance(reasoning, Reasoning)
    assert reasoning.text == THINKING and reasoning.provider == _ADAPTER_NAME[provider]
    if provider == "anthropic":
        assert reasoning.signature and reasoning.signature.startswith("Eq")
    if provider == "responses":
        assert reasoning.id and reasoning.id.startswith("rs_")
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    kinds = [e.kind if isinstance(e, RawChunk) else "" for e in events]
    last_delta = max(i for i, kind in enumerate(kinds) if kind == ev.REASONING_DELTA)
    assert last_delta < first_text
    assert kinds.index(ev.REASONING_COMPLETED) < [e.type for e in events].index("message_completed")
    assert response.output_text == "It is sunny."


@pytest.mark.asyncio
async def test_anthropic_redacted_thinking_is_kept(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="Done.", thinking=THINKING, redacted_thinking="EmwKAhgBEgy3va3pzix"))
    _, response = await run(emulator, "anthropic", **THINKING_PARAMS["anthropic"])
    thinking, redacted = response.message.reasoning
    assert thinking.text == THINKING and thinking.signature
    assert redacted == Reasoning(redacted="EmwKAhgBEgy3va3pzix", provider="anthropic")


@pytest.mark.asyncio
async def test_responses_encrypted_reasoning_is_kept(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="Done.", thinking=THINKING))
    params = {**THINKING_PARAMS["responses"], "include": ["reasoning.encrypted_content"], "store": False}
    _, response = await run(emulator, "responses", **params)
    (reasoning,) = response.message.reasoning
    assert reasoning.encrypted_content and reasoning.id


@pytest.mark.asyncio
async def test_gemini_thought_signature_key(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="", thinking=THINKING, tool_calls=[ToolCallSpec("get_weather", WEATHER)]))
    _, response = await run(emulator, "gemini", **THINKING_PARAMS["gemini"])
    (call,) = response.tool_calls
    assert call.metadata[ev.THOUGHT_SIGNATURE]
    assert "thoughtSignature" not in call.metadata


# -- the request side: reasoning goes back to its provider ----------------------------------
async def tool_round_trip(emu: ProviderEmulator, provider: str, strip: bool = False) -> allm.Response:
    """Step 1 (thinking + a tool call), then the follow-up with the tool result."""
    emu.enqueue(Reply(text="", thinking=THINKING, tool_calls=[ToolCallSpec("get_weather", WEATHER)]))
    question = allm.user("What is the weather in Paris?")
    _, first = await run(emu, provider, [question], **THINKING_PARAMS[provider])
    assert first.ok and first.tool_calls, first.error
    message = first.message
    if strip:  # the reasoning and the call's thought signature lost (as a careless client would)
        calls = [c.model_copy(update={"metadata": {}}) for c in message.tool_calls]
        message = message.model_copy(update={"reasoning": [], "tool_calls": calls})
    emu.enqueue(Reply(text="It is sunny in Paris."))
    follow_up = [question, message, allm.tool_result(first.tool_calls[0].id, {"sky": "sunny"})]
    _, second = await run(emu, provider, follow_up, **THINKING_PARAMS[provider])
    return second


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_round_trip_with_reasoning_is_accepted(emulator: ProviderEmulator, provider: str) -> None:
    second = await tool_round_trip(emulator, provider)
    assert second.ok, second.error
    assert second.output_text == "It is sunny in Paris."
    body = emulator.requests[1].json
    sent = json.dumps(body)
    if provider == "anthropic":
        assistant = body["messages"][1]
        assert [b["type"] for b in assistant["content"]] == ["thinking", "tool_use"]
        assert assistant["content"][0]["signature"]
    if provider == "responses":
        kinds = [item.get("type", "message") for item in body["input"]]
        assert kinds == ["message", "reasoning", "function_call", "function_call_output"]
        reasoning, call = body["input"][1], body["input"][2]
        assert reasoning["id"].startswith("rs_") and call["id"].startswith("fc_")
    if provider == "gemini":
        (model_turn,) = [c for c in body["contents"] if c["role"] == "model"]
        assert model_turn["parts"][0]["thoughtSignature"]
        assert "thought" not in sent.replace("thoughtSignature", "").replace("thinkingConfig", "")
    if provider == "openai":
        assert "reasoning" not in sent


@pytest.mark.asyncio
async def test_emulator_refuses_responses_calls_without_their_reasoning(emulator: ProviderEmulator) -> None:
    second = await tool_round_trip(emulator, "responses", strip=True)
    assert isinstance(second.error, AdapterError) and second.error.reason == "invalid_request"
    assert second.error.status == 400 and "reasoning" in second.error.message
    assert emulator.posts() == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_a_follow_up_that_lost_its_reasoning_is_still_valid(
    emulator: ProviderEmulator, provider: str
) -> None:
    """Anthropic leaves thinking off for it; Gemini sends its documented stand-in signature."""
    second = await tool_round_trip(emulator, provider, strip=True)
    assert second.ok, second.error
    body = emulator.requests[1].json
    if provider == "anthropic":
        assert "thinking" not in body
    else:
        (model_turn,) = [c for c in body["contents"] if c["role"] == "model"]
        assert model_turn["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"


async def _post(emu: ProviderEmulator, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(emu.url + path, json=body) as response:
        text = await response.text()
        return response.status, json.loads(text) if response.status >= 400 else text


_ANTHROPIC_TURNS = [
    {"role": "user", "content": "Weather?"},
    {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}],
    },
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
]


@pytest.mark.asyncio
async def test_emulator_refuses_anthropic_thinking_turns_like_the_api(emulator: ProviderEmulator) -> None:
    body = {"model": "claude", "max_tokens": 64, "stream": True, "messages": _ANTHROPIC_TURNS}
    thinking = {"type": "enabled", "budget_tokens": 1024}
    status, error = await _post(emulator, "/v1/messages", {**body, "thinking": thinking})
    assert status == 400 and "Expected `thinking` or `redacted_thinking`" in error["error"]["message"]
    forged = {"type": "thinking", "thinking": "hmm", "signature": "EqForged"}
    turns = [
        _ANTHROPIC_TURNS[0],
        {**_ANTHROPIC_TURNS[1], "content": [forged, *_ANTHROPIC_TURNS[1]["content"]]},
    ]
    status, error = await _post(
        emulator, "/v1/messages", {**body, "thinking": thinking, "messages": [*turns, _ANTHROPIC_TURNS[2]]}
    )
    assert status == 400 and "Invalid `signature`" in error["error"]["message"]
    status, _ = await _post(emulator, "/v1/messages", body)  # thinking off: accepted
    assert status == 200


@pytest.mark.asyncio
async def test_emulator_refuses_gemini_calls_without_their_signature(emulator: ProviderEmulator) -> None:
    call = {"functionCall": {"name": "get_weather", "args": {}}}
    answer = {"functionResponse": {"name": "get_weather", "response": {"sky": "sunny"}}}
    contents = [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": [answer]},
    ]
    body = {"contents": contents, "generationConfig": {"thinkingConfig": {"thinkingBudget": 128}}}
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    status, error = await _post(emulator, path, body)
    assert status == 400 and "missing a thought_signature" in error["error"]["message"]
    contents[1] = {"role": "model", "parts": [{**call, "thoughtSignature": "forged"}]}
    status, _ = await _post(emulator, path, body)
    assert status == 400
    contents[1] = {
        "role": "model",
        "parts": [{**call, "thoughtSignature": "skip_thought_signature_validator"}],
    }
    status, _ = await _post(emulator, path, body)
    assert status == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_emulator_refuses_a_tool_result_for_an_unknown_call(
    emulator: ProviderEmulator, provider: str
) -> None:
    emulator.enqueue(Reply(text="", tool_calls=[ToolCallSpec("get_weather", WEATHER)]))
    _, first = await run(emulator, provider)
    follow_up = [allm.user("Weather?"), first.message, allm.tool_result("call_unknown_0", "sunny")]
    if provider == "gemini":  # Gemini matches results to calls by name: answer a call never made
        follow_up[-1] = allm.tool_result("call_unknown_0", "sunny", name="get_time")
    _, second = await run(emulator, provider, follow_up)
    assert isinstance(second.error, AdapterError) and second.error.reason == "invalid_request"


_CROSS = [
    (origin, target)
    for origin in ("responses", "anthropic", "gemini")
    for target in PROVIDERS
    if origin != target and {origin, target} != {"openai", "responses"}
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("origin", "target"), _CROSS)
async def test_other_providers_reasoning_is_dropped_cleanly(
    emulator: ProviderEmulator, origin: str, target: str
) -> None:
    emulator.enqueue(Reply(text="", thinking=THINKING, tool_calls=[ToolCallSpec("get_weather", WEATHER)]))
    question = allm.user("What is the weather in Paris?")
    _, first = await run(emulator, origin, [question], **THINKING_PARAMS[origin])
    assert first.ok and first.message.reasoning
    emulator.enqueue(Reply(text="Sunny."))
    follow_up = [question, first.message, allm.tool_result(first.tool_calls[0].id, "sunny")]
    _, second = await run(emulator, target, follow_up, **THINKING_PARAMS[target])
    assert second.ok, second.error
    sent = json.dumps(emulator.requests[1].json)
    assert THINKING not in sent
    for reasoning in first.message.reasoning:
        for secret in (reasoning.signature, reasoning.encrypted_content, reasoning.id):
            assert secret is None or secret not in sent


# -- refusals and content filtering -----------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["openai", "responses", "anthropic"])
async def test_refusal_has_one_place_and_one_finish_reason(emulator: ProviderEmulator, provider: str) -> None:
    emulator.enqueue(Reply(text="", refusal="I can't help with that request."))
    events, response = await run(emulator, provider)
    assert response.ok and response.finish_reason == "content_filter"
    assert response.message.refusal == "I can't help with that request."
    assert response.refusal == "I can't help with that request."
    deltas = [e.data["delta"] for e in of_type(events, RawChunk) if e.kind == ev.REFUSAL_DELTA]
    assert "".join(deltas) == "I can't help with that request."
    assert response.output_text == ""


@pytest.mark.asyncio
async def test_recorded_anthropic_refusal(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(body=(RECORDED / "anthropic_refusal.sse").read_bytes()))
    _events, response = await run(emulator, "anthropic")
    assert response.ok and response.finish_reason == "content_filter"
    assert response.message.refusal == "This request was refused due to policy."
    assert response.metadata[ev.META_NATIVE_FINISH_REASON] == "refusal"
    assert response.metadata[ev.META_STOP_DETAILS]["category"] == "cyber"


@pytest.mark.asyncio
async def test_openai_refusal_recorded_shape(emulator: ProviderEmulator) -> None:
    """A gpt-4o structured-output refusal: ``delta.refusal`` fragments, ``content: null``, ``stop``."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body = {
            "id": "chatcmpl-R1",
            "object": "chat.completion.chunk",
            "model": "gpt-4o",
            "choices": [choice],
        }
        return f"data: {json.dumps(body)}\n\n"

    body = (
        chunk({"role": "assistant", "content": None, "refusal": ""})
        + chunk({"refusal": "I'm sorry, "})
        + chunk({"refusal": "I can't assist with that."})
        + chunk({}, "stop")
        + "data: [DONE]\n\n"
    )
    emulator.enqueue(Reply(body=body.encode()))
    _, response = await run(emulator, "openai")
    assert response.ok and response.finish_reason == "content_filter"
    assert response.message.refusal == "I'm sorry, I can't assist with that."
    assert response.metadata[ev.META_NATIVE_FINISH_REASON] == "stop"


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_content_filter_finish_keeps_partial_output(emulator: ProviderEmulator, provider: str) -> None:
    emulator.enqueue(Reply(text="Here is the start", finish="content_filter"))
    _, response = await run(emulator, provider)
    assert response.ok, response.error
    assert response.finish_reason == "content_filter"
    assert response.output_text == "Here is the start"


@pytest.mark.asyncio
@pytest.mark.parametrize("native", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"])
async def test_gemini_malformed_function_call_is_not_error(emulator: ProviderEmulator, native: str) -> None:
    emulator.enqueue(Reply(text="", finish=native))
    _, response = await run(emulator, "gemini")
    assert response.ok and response.error is None
    assert response.finish_reason == "other"
    assert response.metadata[ev.META_NATIVE_FINISH_REASON] == native


# -- usage means the same thing everywhere ------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_output_tokens_include_reasoning(emulator: ProviderEmulator, provider: str) -> None:
    usage = {"input_tokens": 100, "output_tokens": 340, "reasoning_tokens": 50}
    emulator.enqueue(Reply(text="Sunny.", thinking=THINKING, usage=usage))
    _, response = await run(emulator, provider, **THINKING_PARAMS[provider])
    got = response.usage
    assert (got.input_tokens, got.output_tokens, got.total_tokens) == (100, 340, 440)
    if provider != "anthropic":  # Anthropic does not report the thinking share
        assert got.reasoning_tokens == 50


# -- OpenAI-compatible servers -------------------------------------------------------------------
def _sse(*chunks: dict[str, Any] | str) -> bytes:
    return b"".join(f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n".encode() for c in chunks)


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-c1",
        "model": "llama3.2",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


@pytest.mark.asyncio
async def test_tool_call_deltas_without_index(emulator: ProviderEmulator) -> None:
    """Ollama's shape: whole calls, no ``index``, several in one response."""
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
        },
    ]
    body = _sse(
        _choice({"role": "assistant", "content": ""}),
        _choice({"tool_calls": [calls[0]]}),
        _choice({"tool_calls": [calls[1]]}),
        _choice({}, "tool_calls"),
        "[DONE]",
    )
    emulator.enqueue(Reply(body=body))
    _, response = await run(emulator, "openai")
    assert [(c.id, c.arguments) for c in response.tool_calls] == [
        ("call_a", {"city": "Paris"}),
        ("call_b", {"city": "Rome"}),
    ]
    assert response.finish_reason == "tool_calls"


@pytest.mark.asyncio
async def test_stream_without_usage_chunk(emulator: ProviderEmulator) -> None:
    body = _sse(_choice({"role": "assistant", "content": "Hi"}), _choice({}, "stop"), "[DONE]")
    emulator.enqueue(Reply(body=body))
    events, response = await run(emulator, "openai")
    assert response.ok and response.output_text == "Hi"
    assert response.usage == allm.Usage()
    assert not [e for e in of_type(events, RawChunk) if e.kind == "usage"]


@pytest.mark.asyncio
async def test_azure_first_chunk_with_empty_choices(emulator: ProviderEmulator) -> None:
    filters = {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}
    first = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [filters],
    }
    body = _sse(first, _choice({"role": "assistant", "content": "Hi"}), _choice({}, "stop"), "[DONE]")
    emulator.enqueue(Reply(body=body))
    _events, response = await run(emulator, "openai")
    assert response.ok and response.output_text == "Hi"
    assert response.metadata[ev.META_RESPONSE_ID] == "chatcmpl-c1"
    assert response.metadata[ev.META_MODEL] == "llama3.2"


@pytest.mark.asyncio
async def test_openai_base_url_environment_variable(
    emulator: ProviderEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", emulator.base_url("openai"))
    emulator.enqueue(Reply(text="From the environment."))
    eng = allm.Engine(adapter="openai", adapter_opts={"api_key": KEY}, model="gpt-4o-mini")
    response = await allm.generate(eng, allm.request([allm.user("hi")]))
    assert response.output_text == "From the environment."
    assert emulator.requests[0].path == "/v1/chat/completions"


@pytest.mark.asyncio
async def test_azure_deployment_url(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="From Azure."))
    eng = allm.Engine(
        adapter="openai",
        adapter_opts={
            "base_url": emulator.url,
            "api_key": KEY,
            "azure_deployment": "my-gpt4o",
            "api_version": "2024-10-21",
        },
        model="gpt-4o",
    )
    response = await allm.generate(eng, allm.request([allm.user("hi")]))
    assert response.output_text == "From Azure.", response.error
    sent = emulator.requests[0]
    assert sent.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers
