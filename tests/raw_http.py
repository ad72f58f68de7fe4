"""A minimal HTTP/1.1 server on 127.0.0.1 for tests that need byte-level control of a response.

The provider emulator speaks the providers' formats correctly; the attacks in the hardening
tests need what no well-behaved server does (an endless line, a gzip bomb, closing idle
keep-alive connections on cue). ``RawServer(handler)`` accepts connections and calls
``handler(conn)`` for each; :class:`Conn` reads requests and writes responses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"


@dataclass
class RawRequest:
    """One request as received: the request line, lower-cased headers, the body."""

    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Conn:
    """One accepted connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sent: int = 0  # body bytes written

    async def read_request(self) -> RawRequest | None:
        """The next request on this connection, or None at EOF."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        line, *rest = head.decode("latin-1").split("\r\n")
        headers = {}
        for item in rest:
            name, sep, value = item.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RawRequest(line, headers, body)

    async def start_sse(self, extra_headers: bytes = b"") -> None:
        """Send the headers of a chunked ``text/event-stream`` response."""
        self.writer.write(SSE_HEAD + extra_headers + b"\r\n")
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        """Send one chunk of the chunked body."""
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.sent += len(data)
        await self.writer.drain()

    async def end(self) -> None:
        """End the chunked body (the connection stays open)."""
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()


@dataclass
class RawServer:
    """``async with RawServer(handler) as server``: serves on ``server.url`` until the block ends."""

    handler: Callable[[Conn], Awaitable[None]]
    conns: list[Conn] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(reader, writer)
        self.conns.append(conn)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(conn)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        await self._server.wait_closed()
