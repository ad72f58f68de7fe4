"""Each provider's request body, headers and pre-flight refusals as pure functions (no sockets).

What the emulator receives over HTTP is tested per provider (``test_openai_chat.py``,
``test_openai_responses.py``, ``test_anthropic.py``, ``test_gemini.py``); these tests pin
the builders themselves.
"""

from __future__ import annotations

from typing import Any

import pytest

import rx_allm as allm
from rx_allm.adapter import StreamOptions
from rx_allm.providers import anthropic, gemini
from rx_allm.providers.anthropic import Anthropic
from rx_allm.providers.gemini import Gemini
from rx_allm.providers.openai import OpenAI, chat, responses, select_endpoint
from rx_allm.providers.openai.shared import request_headers

CALL = allm.ToolCall(id="call_1", name="lookup", arguments={"q": "rx"})
CONVERSATION = [
    allm.system("be brief"),
    allm.user("find rx"),
    allm.assistant("", tool_calls=[CALL]),
    allm.tool_result("call_1", '{"hits": 3}'),
]
LOOKUP = allm.tool(name="lookup", description="search", schema={"type": "object"})


def conversation(**fields: Any) -> allm.Request:
    return allm.request(CONVERSATION, tools=[LOOKUP], **fields)


def test_chat_body() -> None:
    body = chat.build_body(conversation(max_tokens=9, temperature=0.5), "gpt-4o", {"seed": 1})
    assert body["model"] == "gpt-4o" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["messages"][2]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "rx"}'}}
    ]
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"hits": 3}'}
    assert body["tools"][0]["function"]["name"] == "lookup"
    assert (body["max_completion_tokens"], body["temperature"], body["seed"]) == (9, 0.5, 1)
    assert chat.max_tokens_field("gpt-3.5-turbo") == "max_tokens"


def test_responses_body() -> None:
    body = responses.build_body(conversation(max_tokens=9), "gpt-5", {"reasoning_effort": "low"})
    assert body["instructions"] == "be brief" and body["stream"] is True
    assert body["input"] == [
        {"role": "user", "content": "find rx"},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"q": "rx"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"hits": 3}'},
    ]
    assert body["max_output_tokens"] == 9 and body["reasoning"] == {"effort": "low"}
    assert "reasoning_effort" not in body


def test_anthropic_body() -> None:
    body = anthropic.build_body(conversation(), "claude-haiku-4-5", {"top_k": 5})
    assert body["model"] == "claude-haiku-4-5" and body["system"] == "be brief"
    assert body["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS and body["top_k"] == 5
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "rx"}}
    ]
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": '{"hits": 3}'}],
    }
    assert body["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}, "description": "search"}]


def test_gemini_body() -> None:
    body = gemini.build_body(conversation(max_tokens=9), "gemini-2.5-flash", {"top_p": 0.5})
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    call = {"functionCall": {"name": "lookup", "args": {"q": "rx"}, "id": "call_1"}}
    assert body["contents"][1] == {"role": "model", "parts": [call]}
    assert body["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "lookup",
        "response": {"hits": 3},
        "id": "call_1",
    }
    assert body["generationConfig"] == {"maxOutputTokens": 9, "topP": 0.5}


PNG_B64 = "iVBORw0KGgo="
IMAGES = allm.user(
    [
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": "data:image/svg+xml,%3Csvg%2F%3E"}},
    ]
)


def test_image_parts_in_each_providers_shape() -> None:
    request = allm.request([IMAGES])
    anthropic_blocks = anthropic.build_body(request, "claude-haiku-4-5", {})["messages"][0]["content"]
    assert anthropic_blocks == [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/svg+xml", "data": "PHN2Zy8+"}},
    ]
    gemini_parts = gemini.build_body(request, "gemini-2.5-flash", {})["contents"][0]["parts"]
    assert gemini_parts == [
        {"text": "compare"},
        {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
        {"inlineData": {"mimeType": "image/svg+xml", "data": "PHN2Zy8+"}},
    ]
    responses_parts = responses.build_body(request, "gpt-5", {})["input"][0]["content"]
    assert [p["type"] for p in responses_parts] == ["input_text", *["input_image"] * 3]
    assert chat.build_body(request, "gpt-4o", {})["messages"][0]["content"] == IMAGES.content


def test_headers() -> None:
    assert request_headers("sk-x", {"organization": "org-1"})["OpenAI-Organization"] == "org-1"
    assert anthropic.request_headers("k", {})["anthropic-version"] == anthropic.DEFAULT_VERSION
    assert gemini.request_headers("k")["x-goog-api-key"] == "k"


@pytest.mark.parametrize(
    ("model", "opts", "endpoint"),
    [
        ("gpt-4o", {}, "chat_completions"),
        ("gpt-5-mini", {}, "responses"),
        ("o3", {}, "responses"),
        ("gpt-5", {"adapter_opts": {"endpoint": "chat_completions"}}, "chat_completions"),
        ("gpt-4o", {"params": {"endpoint": "responses"}}, "responses"),
    ],
)
def test_endpoint_selection(model: str, opts: dict[str, Any], endpoint: str) -> None:
    assert select_endpoint(model, StreamOptions(**opts)) == endpoint


def test_pre_flight_refusals() -> None:
    with pytest.raises(allm.AdapterError) as info:
        select_endpoint("gpt-4o", StreamOptions(adapter_opts={"endpoint": "completions"}))
    assert info.value.reason == "unsupported_feature"
    with pytest.raises(allm.AdapterError) as info:
        anthropic.check_supported(allm.request([allm.user("x")], response_format="json_object"))
    assert info.value.reason == "unsupported_feature"
    orphan = allm.request([allm.user("x"), allm.tool_result("nope", "1")])
    with pytest.raises(allm.AdapterError) as info:
        gemini.check_supported(orphan)
    assert info.value.reason == "invalid_request"


def test_provider_defaults_are_class_attributes() -> None:
    assert OpenAI.env_vars == ("OPENAI_API_KEY",) and OpenAI.default_base_url == "https://api.openai.com/v1"
    assert Anthropic.env_vars == ("ANTHROPIC_API_KEY",)
    assert Gemini.env_vars == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert all(cls.default_model for cls in (OpenAI, Anthropic, Gemini))
