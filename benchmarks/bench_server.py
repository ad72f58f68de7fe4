"""The benchmarks' SSE server: prebuilt provider bodies over loopback, in its own process.

Run: ``python benchmarks/bench_server.py [--max-seconds S]``. It prints its base URL
(``http://127.0.0.1:<port>``) on the first line of stdout, then serves until stdin
closes, SIGTERM, or ``--max-seconds`` pass. Clients put the scenario in the path, so
every client library can reach it with nothing but a ``base_url``::

    POST /{mode}/{chunks}/{tag}/v1/chat/completions     OpenAI Chat Completions format
    POST /{mode}/{chunks}/{tag}/v1/messages             Anthropic Messages format
    GET  /log                                           {"received"|"first_byte"|"disconnects": {tag: t}}
    GET  /prime/{provider}/{chunks}                     render a body now, outside any measurement

``chunks`` is the number of text deltas. ``mode`` is ``full`` (the whole body, written
in 64 KiB pieces like a fast upstream), ``first`` (everything up to and including the
first text delta, then the rest after a short pause, as a model's first token comes
alone) or ``stall`` (up to the first text delta, then nothing until the client goes
away). Times in ``/log`` are
``time.monotonic()`` of this process (system-wide on Linux, so comparable with the
client's): ``received`` when the handler starts, ``first_byte`` just before the first
body write, ``disconnects`` when the handler is cancelled because the connection closed
(``handler_cancellation=True``).
Bodies are rendered once per (format, chunks) by :mod:`rx_allm.testing.wire`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
import time
from functools import cache

from aiohttp import web

from rx_allm.testing.wire import Reply, renderer

WRITE_SIZE = 64 * 1024
MODES = ("full", "first", "stall")
PAUSE = 0.005  # seconds between the first delta and the rest in ``first`` mode
ROUTES = {"chat/completions": "openai", "messages": "anthropic"}
#: Frames up to and including the first text delta (OpenAI: role chunk, delta; Anthropic:
#: message_start, content_block_start, ping, content_block_delta).
FIRST_DELTA_FRAMES = {"openai": 2, "anthropic": 4}
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")


def deltas(chunks: int) -> list[str]:
    """``chunks`` word-sized text deltas, varied like real tokens."""
    return [f" {WORDS[i % len(WORDS)]}{i % 97}" for i in range(chunks)]


@cache
def frames(provider: str, chunks: int) -> tuple[bytes, ...]:
    """The encoded SSE frames of a ``chunks``-delta reply (usage included)."""
    reply = Reply(text=deltas(chunks), usage={"input_tokens": 12, "output_tokens": chunks})
    r = renderer(provider, reply, {"stream_options": {"include_usage": True}})
    return tuple(r.encode(frame) for frame in r.frames())


@cache
def body(provider: str, chunks: int) -> bytes:
    return b"".join(frames(provider, chunks))


class BenchServer:
    """Request handler plus the timing log."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}
        self.first_byte: dict[str, float] = {}
        self.disconnects: dict[str, float] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        received = time.monotonic()
        parts = request.path.strip("/").split("/", 4)
        if len(parts) != 5 or parts[3] != "v1" or parts[4] not in ROUTES or parts[0] not in MODES:
            return web.json_response({"error": {"message": f"no route {request.path}"}}, status=404)
        mode, chunks, tag, provider = parts[0], int(parts[1]), parts[2], ROUTES[parts[4]]
        self.received[tag] = received
        await request.read()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            if mode == "full":
                data = body(provider, chunks)
                self.first_byte[tag] = time.monotonic()
                for start in range(0, len(data), WRITE_SIZE):
                    await response.write(data[start : start + WRITE_SIZE])
                await response.write_eof()
            else:
                split = FIRST_DELTA_FRAMES[provider]
                parts = frames(provider, max(chunks, 1))
                self.first_byte[tag] = time.monotonic()
                await response.write(b"".join(parts[:split]))
                if mode == "stall":
                    await asyncio.get_running_loop().create_future()  # until the client goes away
                await asyncio.sleep(PAUSE)
                await response.write(b"".join(parts[split:]))
                await response.write_eof()
        except asyncio.CancelledError:
            self.disconnects[tag] = time.monotonic()
            raise
        except ConnectionResetError:
            self.disconnects[tag] = time.monotonic()
        return response

    async def prime(self, request: web.Request) -> web.Response:
        data = body(request.match_info["provider"], int(request.match_info["chunks"]))
        return web.json_response({"bytes": len(data)})

    async def log(self, _request: web.Request) -> web.Response:
        log = {"received": self.received, "first_byte": self.first_byte, "disconnects": self.disconnects}
        return web.json_response(log)


async def serve(max_seconds: float) -> None:
    server = BenchServer()
    app = web.Application()
    app.router.add_get("/log", server.log)
    app.router.add_get("/prime/{provider}/{chunks}", server.prime)
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    threading.Thread(target=_wait_stdin_eof, args=(loop, stop), daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_seconds)
    await runner.cleanup()


def _wait_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    sys.stdin.read()
    with contextlib.suppress(RuntimeError):  # the loop may already be closed
        loop.call_soon_threadsafe(stop.set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop after this long regardless")
    args = parser.parse_args()
    asyncio.run(serve(args.max_seconds))


if __name__ == "__main__":
    main()
