"""Bounded memory per event: an SSE event that never completes ends the stream at ``max_event_bytes``.

A server on 127.0.0.1 sends one endless line, or endless ``data:`` lines with no blank line,
plain or gzip-encoded (a few KB on the wire become tens of MB). The server writes until the
client goes away, up to a cap far above the limit: the stream must end with
``StreamError("malformed_event")`` naming the limit, long before the cap.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from raw_http import Conn, RawServer

import rx_allm as allm
from rx_allm.testing.recording import record

KEY = "sk-hardening-memory-0123456789"
MiB = 1024 * 1024
CAP = 48 * MiB  # what the server would send at most (decompressed): above every limit tested
PIECE = 64 * 1024


def engine(url: str) -> allm.Engine:
    return allm.Engine(
        adapter="openai", model="gpt-4o-mini", adapter_opts={"base_url": f"{url}/v1", "api_key": KEY}
    )


def endless(kind: str) -> Any:
    """A handler sending ``message_started`` material then an event that never ends."""

    async def handler(conn: Conn) -> None:
        if await conn.read_request() is None:
            return
        gzip = kind.startswith("gzip")
        await conn.start_sse(b"Content-Encoding: gzip\r\n" if gzip else b"")
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31) if gzip else None
        first = b'data: {"choices":[{"index":0,"delta":{"content":"' if kind.endswith("line") else b""
        piece = b"x" * PIECE if kind.endswith("line") else b"data: " + b"y" * (PIECE - 7) + b"\n"
        produced = 0
        data = first
        while produced < CAP:
            data += piece
            produced += len(data)
            if compressor is not None:
                data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            await conn.chunk(data)
            data = b""
        await conn.end()

    return handler


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["line", "data_lines", "gzip_line", "gzip_data_lines"])
async def test_an_endless_event_ends_the_stream_at_the_configured_limit(kind: str) -> None:
    async with RawServer(endless(kind)) as server:
        rec = await record(
            allm.stream_generate(engine(server.url), allm.request([allm.user("hi")]), max_event_bytes=MiB),
            30.0,
        )
        sent = server.conns[0].sent
    assert isinstance(rec.error, allm.StreamError), rec.error
    assert rec.error.reason == "malformed_event"
    assert "max_event_bytes=1048576" in rec.error.message
    assert rec.error.provider == "openai"
    assert sent < CAP


@pytest.mark.asyncio
async def test_the_default_limit_applies_to_a_gzip_bomb() -> None:
    async with RawServer(endless("gzip_line")) as server:
        rec = await record(allm.stream_generate(engine(server.url), allm.request([allm.user("hi")])), 60.0)
    assert isinstance(rec.error, allm.StreamError), rec.error
    assert rec.error.reason == "malformed_event"
    assert f"max_event_bytes={allm.DEFAULT_MAX_EVENT_BYTES}" in rec.error.message


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "big"])
def test_max_event_bytes_must_be_a_positive_integer(value: Any) -> None:
    with pytest.raises(allm.ValidationError) as info:
        allm.stream_generate(
            engine("http://127.0.0.1:9"), allm.request([allm.user("hi")]), max_event_bytes=value
        )
    assert ("max_event_bytes", "must_be_positive_int") in info.value.errors
