"""Helpers several test modules share (import them from here, not from ``conftest``).

* ``fixture_bytes(name)`` — ``tests/fixtures/wire/<name>`` byte for byte (``.sse`` is
  added when missing).
* ``emulated_engine(emu, provider, **params)`` — an engine for one of the emulator's four
  APIs; ``thinking_engine(emu, provider)`` — the same with reasoning turned on (the emulator
  then validates follow-ups as the real API would).
* ``openai_engine``, ``hello``, ``events_of``, ``of_type``, ``usage_chunks``,
  ``until``, ``connections`` — small helpers several test modules share.

Recording a subscription is the public kit's :func:`rx_allm.testing.record`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

import rx_allm as allm
from rx_allm.events import (
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
)
from rx_allm.testing.emulator import ProviderEmulator

WIRE_FIXTURES = Path(__file__).parent / "fixtures" / "wire"
OPENAI_KEY = "sk-test-openai-0123456789"


def fixture_bytes(name: str) -> bytes:
    """The raw bytes of a wire fixture (``"openai_text"`` or ``"openai_text.sse"``)."""
    path = WIRE_FIXTURES / (name if name.endswith(".sse") else f"{name}.sse")
    return path.read_bytes()


def openai_engine(emu: ProviderEmulator, model: str = "gpt-4o-mini", **adapter_opts: Any) -> allm.Engine:
    """An OpenAI engine pointed at ``emu`` with :data:`OPENAI_KEY`."""
    opts = {"base_url": emu.base_url("openai"), "api_key": OPENAI_KEY, **adapter_opts}
    return allm.Engine(adapter="openai", adapter_opts=opts, model=model)


_EMULATED_SETUP: dict[str, tuple[str, dict[str, Any], str]] = {
    "openai": ("openai", {"endpoint": "chat_completions"}, "gpt-4o-mini"),
    "responses": ("openai", {"endpoint": "responses"}, "o4-mini"),
    "anthropic": ("anthropic", {}, "claude-sonnet-4-5"),
    "gemini": ("gemini", {}, "gemini-2.5-flash"),
}
#: Provider parameters that turn reasoning on (the emulator validates follow-ups against them).
THINKING_PARAMS: dict[str, dict[str, Any]] = {
    "openai": {},
    "responses": {"reasoning_effort": "low", "reasoning_summary": "auto"},
    "anthropic": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    "gemini": {"thinking_config": {"includeThoughts": True, "thinkingBudget": 1024}},
}
EMULATED_KEY = "sk-emulated-provider-0000"


def emulated_engine(emu: ProviderEmulator, provider: str, **params: Any) -> allm.Engine:
    """An engine for ``provider`` (``responses``: OpenAI's Responses endpoint) at ``emu``."""
    adapter, opts, model = _EMULATED_SETUP[provider]
    return allm.Engine(
        adapter=adapter,
        adapter_opts={"base_url": emu.base_url(provider), "api_key": EMULATED_KEY, **opts},
        model=model,
        params=params,
    )


def thinking_engine(emu: ProviderEmulator, provider: str) -> allm.Engine:
    """:func:`emulated_engine` with reasoning on (:data:`THINKING_PARAMS`)."""
    return emulated_engine(emu, provider, **THINKING_PARAMS[provider])


def hello() -> allm.Request:
    return allm.request([allm.user("Bonjour")])


async def events_of(engine: allm.Engine, **options: Any) -> tuple[list[Event], Exception | None]:
    """Every event of one :func:`hello` stream (raw chunks included) and its terminal error, if any."""
    events: list[Event] = []
    stream = allm.stream_generate(engine, hello(), include_raw_chunks=True, **options)
    try:
        async for event in allm.iterate(stream):
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


def of_type(events: Sequence[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def usage_chunks(events: Sequence[Event]) -> list[allm.Usage]:
    """The usage of every ``raw_chunk`` of kind ``"usage"``."""
    usages = [e.data for e in events if isinstance(e, RawChunk) and e.kind == "usage"]
    assert all(isinstance(usage, allm.Usage) for usage in usages)
    return usages


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll ``predicate`` every 5 ms on the running loop; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def connections(session: aiohttp.ClientSession) -> tuple[int, int]:
    """(in use, idle in the pool) for a session's connector (aiohttp keeps no public count)."""
    connector = session.connector
    assert isinstance(connector, aiohttp.BaseConnector)
    return len(connector._acquired), sum(len(idle) for idle in connector._conns.values())


# -- OpenAI wire pieces shared by the test_openai*.py modules ------------------------------------
TEXT = "Bonjour ! Ça va ? 👋"
REQ = allm.request([allm.user("hi")])


RESPONSES = {"endpoint": "responses"}


def sse(*payloads: dict[str, Any] | str, named: bool = False) -> bytes:
    """A handcrafted SSE body; ``named`` adds an ``event:`` line equal to the payload's type."""
    out = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        name = payload.get("type") if named and isinstance(payload, dict) else None
        out.append((f"event: {name}\n" if name else "") + f"data: {data}\n\n")
    return "".join(out).encode()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice."""
    choice = {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-x", "object": "chat.completion.chunk", "choices": [choice], **extra}


WEATHER_TOOL = allm.tool(
    name="get_weather",
    description="Current weather",
    schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


PAST_CALL = allm.ToolCall(id="call_9", name="get_weather", arguments={"city": "Paris"})


CONVERSATION = [
    allm.system("Be brief."),
    allm.user("Weather in Paris?"),
    allm.assistant("", tool_calls=[PAST_CALL]),
    allm.tool_result("call_9", {"temp_c": 21}),
    allm.user("Thanks"),
]


SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
}


async def received(
    emu: ProviderEmulator, request: allm.Request, model: str = "gpt-4o", **options: Any
) -> Any:
    """Send ``request`` and return the recorded request (body parsed, headers lower-cased)."""
    response = await allm.generate(openai_engine(emu, model), request, **options)
    assert response.ok, response.error
    return emu.requests[-1]


def assert_success_order(events: list[Any]) -> None:
    """message_started first, one message_completed last, usage right before it, calls in order."""
    assert isinstance(events[0], MessageStarted)
    assert isinstance(events[-1], MessageCompleted)
    assert sum(isinstance(e, MessageCompleted) for e in events) == 1
    usage = [i for i, e in enumerate(events) if isinstance(e, RawChunk) and e.kind == "usage"]
    assert usage in ([], [len(events) - 2])
    for call_id in {e.id for e in events if isinstance(e, ToolCallStarted)}:
        kinds = [
            type(e)
            for e in events
            if isinstance(e, (ToolCallStarted, ToolCallDelta, ToolCallCompleted)) and e.id == call_id
        ]
        assert kinds[0] is ToolCallStarted and kinds[-1] is ToolCallCompleted
        assert kinds.count(ToolCallStarted) == kinds.count(ToolCallCompleted) == 1


async def sse_frames(
    response: aiohttp.ClientResponse, enough: Callable[[list[dict[str, Any]]], bool], timeout: float
) -> list[dict[str, Any]]:
    """SSE frames of a response as ``{"id": <id or None>, "data": <data text>}``, read until
    ``enough(frames)`` holds or the body ends (each read bounded by ``timeout`` seconds)."""
    frames: list[dict[str, Any]] = []
    buffer = b""
    while not enough(frames):
        data = await asyncio.wait_for(response.content.readany(), timeout)
        if not data:
            break
        buffer += data
        while b"\n\n" in buffer:
            raw, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in raw.decode().splitlines())
            frames.append({"id": fields.get("id"), "data": fields["data"]})
    return frames
