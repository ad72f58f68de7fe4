"""The streaming clients the benchmarks compare, each reading one stream from the benchmark server.

Every ``read_*`` coroutine streams one reply to its end and returns how many text deltas
it saw (so a client that skipped work would be caught). The peers are the official
``openai`` and ``anthropic`` SDKs, ``aiohttp-sse-client`` (stopped at the terminal event
so it does not reconnect) and a bare aiohttp reader that splits lines and ``json.loads``
each ``data:`` payload: the floor of this stack. Peer packages are imported lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from harness import BENCH_KEY

import rx_allm as allm

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}
PROMPT = "Write a long story."
MAX_TOKENS = 1 << 20


def base_url(server: str, provider: str, mode: str, chunks: int, tag: str) -> str:
    """What a client library takes as ``base_url`` for this scenario."""
    root = f"{server}/{mode}/{chunks}/{tag}"
    return f"{root}/v1" if provider == "openai" else root


def endpoint(server: str, provider: str, mode: str, chunks: int, tag: str) -> str:
    """The full POST URL (for the raw aiohttp clients)."""
    root = f"{server}/{mode}/{chunks}/{tag}/v1"
    return f"{root}/chat/completions" if provider == "openai" else f"{root}/messages"


def request_body(provider: str) -> dict[str, Any]:
    body = {"model": MODELS[provider], "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    return {**body, "max_tokens": MAX_TOKENS} if provider == "anthropic" else body


def request_headers(provider: str) -> dict[str, str]:
    if provider == "openai":
        return {"Authorization": f"Bearer {BENCH_KEY}", "Accept": "text/event-stream"}
    return {"x-api-key": BENCH_KEY, "anthropic-version": "2023-06-01", "Accept": "text/event-stream"}


# -- rx_allm ---------------------------------------------------------------------------
def rx_engine(server: str, provider: str, mode: str, chunks: int, tag: str) -> allm.Engine:
    """An engine for ``provider`` pointed at the benchmark server."""
    opts = {"api_key": BENCH_KEY, "base_url": base_url(server, provider, mode, chunks, tag)}
    return allm.Engine(adapter=provider, model=MODELS[provider], adapter_opts=opts)


def rx_request() -> allm.Request:
    return allm.request([allm.user(PROMPT)], max_tokens=MAX_TOKENS)


async def read_rx_allm(server: str, provider: str, chunks: int, tag: str) -> int:
    """The full path: adapter → ``stream_generate`` with an ``on_event`` callback → subscriber."""
    engine = rx_engine(server, provider, "full", chunks, tag)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    deltas = [0]  # counted by on_event
    delivered = [0]  # counted by the subscriber

    def on_event(event: allm.Event) -> None:
        if event.type == "text_delta":
            deltas[0] += 1

    def on_next(_event: allm.Event) -> None:
        delivered[0] += 1

    events = allm.stream_generate(engine, rx_request(), on_event=on_event)
    events.subscribe(on_next, done.set_exception, lambda: done.set_result(None))
    await done
    if delivered[0] < deltas[0]:
        raise AssertionError("the subscriber missed events")
    return deltas[0]


# -- official SDKs -------------------------------------------------------------------
async def pooled_openai(stack: contextlib.AsyncExitStack, server: str) -> Any:
    """One ``AsyncOpenAI`` (one connection pool, no retries) for ``server``, closed with ``stack``."""
    from openai import AsyncOpenAI

    return await stack.enter_async_context(AsyncOpenAI(base_url=server, api_key=BENCH_KEY, max_retries=0))


async def openai_stream(client: Any) -> Any:
    """``client.chat.completions.create(stream=True)`` for the benchmark prompt."""
    return await client.chat.completions.create(
        model=MODELS["openai"], messages=[{"role": "user", "content": PROMPT}], stream=True
    )


async def read_openai(server: str, provider: str, chunks: int, tag: str) -> int:
    """``AsyncOpenAI(...).chat.completions.create(stream=True)``, iterated to the end."""
    from openai import AsyncOpenAI

    url = base_url(server, provider, "full", chunks, tag)
    async with AsyncOpenAI(base_url=url, api_key=BENCH_KEY, max_retries=0) as client:
        stream = await openai_stream(client)
        seen = 0
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                seen += 1
    return seen


async def read_anthropic(server: str, provider: str, chunks: int, tag: str) -> int:
    """``AsyncAnthropic(...).messages.create(stream=True)``, iterated to the end."""
    from anthropic import AsyncAnthropic

    url = base_url(server, provider, "full", chunks, tag)
    async with AsyncAnthropic(base_url=url, api_key=BENCH_KEY, max_retries=0) as client:
        stream = await client.messages.create(
            model=MODELS["anthropic"],
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
        )
        seen = 0
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                seen += 1
    return seen


# -- raw aiohttp readers ---------------------------------------------------------------
def classify(provider: str, data: str | bytes) -> int:
    """1 for a text delta, 0 for another event, -1 for the terminal one (``[DONE]``, ``message_stop``)."""
    if provider == "openai":
        if data[:6] in ("[DONE]", b"[DONE]"):
            return -1
        choices = json.loads(data).get("choices")
        return 1 if choices and choices[0].get("delta", {}).get("content") else 0
    payload = json.loads(data)
    kind = payload.get("type")
    if kind == "message_stop":
        return -1
    return 1 if kind == "content_block_delta" and payload["delta"].get("type") == "text_delta" else 0


async def read_sse_client(server: str, provider: str, chunks: int, tag: str) -> int:
    """``aiohttp_sse_client.client.EventSource`` with POST, ``json.loads`` per event, stopped at the end."""
    from aiohttp_sse_client import client as sse_client

    url = endpoint(server, provider, "full", chunks, tag)
    seen = 0
    async with (
        aiohttp.ClientSession() as session,
        sse_client.EventSource(
            url,
            option={"method": "POST"},
            session=session,
            json=request_body(provider),
            headers=request_headers(provider),
        ) as source,
    ):
        async for event in source:
            kind = classify(provider, event.data)
            if kind < 0:
                break
            seen += kind
    return seen


async def read_bare(server: str, provider: str, chunks: int, tag: str) -> int:
    """aiohttp + split lines + ``json.loads`` of each ``data:`` payload: the floor of this stack."""
    return await read_lines(server, provider, chunks, tag, None)


async def read_bare_16k(server: str, provider: str, chunks: int, tag: str) -> int:
    """The bare reader taking at most 16 KiB per read, as rx_allm's transport does."""
    return await read_lines(server, provider, chunks, tag, 1 << 14)


async def read_lines(
    server: str,
    provider: str,
    chunks: int,
    tag: str,
    read_size: int | None,
    session: aiohttp.ClientSession | None = None,
) -> int:
    """The bare reader (reads of up to ``read_size`` bytes; a new session unless one is given)."""
    seen = 0
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(aiohttp.ClientSession())
        url = endpoint(server, provider, "full", chunks, tag)
        response = await stack.enter_async_context(
            session.post(url, json=request_body(provider), headers=request_headers(provider))
        )
        tail = b""
        reads = response.content.iter_chunked(read_size) if read_size else response.content.iter_any()
        async for chunk in reads:
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line.startswith(b"data: "):
                    kind = classify(provider, line[6:])
                    if kind < 0:
                        return seen
                    seen += kind
    return seen


Reader = Callable[[str, str, int, str], Awaitable[int]]
#: client name → (reader, the providers it speaks)
READERS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    "rx_allm": (read_rx_allm, ("openai", "anthropic")),
    "openai": (read_openai, ("openai",)),
    "anthropic": (read_anthropic, ("anthropic",)),
    "aiohttp_sse_client": (read_sse_client, ("openai", "anthropic")),
    "bare_aiohttp": (read_bare, ("openai", "anthropic")),
    "bare_aiohttp_16k": (read_bare_16k, ("openai", "anthropic")),
}
