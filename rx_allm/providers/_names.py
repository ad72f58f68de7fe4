"""The names each built-in adapter knows: its ``adapter_opts`` keys and its provider parameters.

The runner refuses a name outside these sets with the nearest valid one (a typo must never
vanish); a parameter the library does not model goes through ``extra_body``. Gemini names
may be written in camelCase or snake_case.
"""

from __future__ import annotations

import re

#: ``adapter_opts`` every HTTP adapter takes.
HTTP_OPTIONS = frozenset({"api_key", "base_url", "session"})
OPENAI_OPTIONS = HTTP_OPTIONS | {"endpoint", "organization", "project", "azure_deployment", "api_version"}
ANTHROPIC_OPTIONS = HTTP_OPTIONS | {"anthropic_version"}
GEMINI_OPTIONS = HTTP_OPTIONS
FAKE_OPTIONS = frozenset({"script", "scripts", "usage", "cleanup_observer", "record"})

#: Chat Completions and Responses parameters (``endpoint`` selects between them).
OPENAI_PARAMS = frozenset(
    {
        "audio",
        "background",
        "conversation",
        "endpoint",
        "frequency_penalty",
        "include",
        "instructions",
        "logit_bias",
        "logprobs",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "reasoning",
        "reasoning_effort",
        "reasoning_summary",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream_options",
        "text",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
        "verbosity",
        "web_search_options",
    }
)
ANTHROPIC_PARAMS = frozenset(
    {
        "container",
        "context_management",
        "mcp_servers",
        "metadata",
        "service_tier",
        "stop_sequences",
        "thinking",
        "top_k",
        "top_p",
    }
)
#: ``generationConfig`` fields a provider parameter may name (in camelCase or snake_case).
GENERATION_FIELDS = frozenset(
    {
        "candidateCount",
        "enableEnhancedCivicAnswers",
        "frequencyPenalty",
        "logprobs",
        "maxOutputTokens",
        "mediaResolution",
        "presencePenalty",
        "responseJsonSchema",
        "responseLogprobs",
        "responseMimeType",
        "responseModalities",
        "responseSchema",
        "seed",
        "speechConfig",
        "stopSequences",
        "temperature",
        "thinkingConfig",
        "topK",
        "topP",
    }
)
#: Top-level ``GenerateContentRequest`` fields a parameter may set.
GEMINI_TOP_LEVEL = frozenset({"cachedContent", "generationConfig", "labels", "safetySettings", "toolConfig"})


def snake(name: str) -> str:
    """``topK`` → ``top_k``."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


GEMINI_PARAMS = frozenset(
    {"stop", *GENERATION_FIELDS, *GEMINI_TOP_LEVEL}
    | {snake(name) for name in GENERATION_FIELDS | GEMINI_TOP_LEVEL}
)
#: Every provider parameter a built-in adapter models (what the Fake accepts, so that a
#: script-driven test refuses the same typos as the real call).
ALL_PARAMS = OPENAI_PARAMS | ANTHROPIC_PARAMS | GEMINI_PARAMS

__all__ = [
    "ALL_PARAMS",
    "ANTHROPIC_OPTIONS",
    "ANTHROPIC_PARAMS",
    "FAKE_OPTIONS",
    "GEMINI_OPTIONS",
    "GEMINI_PARAMS",
    "GENERATION_FIELDS",
    "HTTP_OPTIONS",
    "OPENAI_OPTIONS",
    "OPENAI_PARAMS",
]
