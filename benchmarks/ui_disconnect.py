"""Browser leaves → the provider sees the close, through the UI handlers.

Run: ``python benchmarks/ui_disconnect.py [--streams N]``.

One process on 127.0.0.1: the provider emulator streams slowly (a token every 50 ms), an
aiohttp server runs :func:`~rx_allm.ui.ai_sdk_handler` and :func:`~rx_allm.ui.ag_ui_handler`
(``handler_cancellation=True``), and a client plays the browser: it posts, reads the first
frames, then closes its connection (what Stop or a closed tab does). Latency = the moment
the emulator notices its client (the adapter) went away - the moment the browser closed,
both ``time.monotonic()``. The chain it measures: the browser's close → aiohttp cancels
the handler → the frame iterator closes → the subscription is disposed → the provider
request is cancelled. Target: p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
from aiohttp import web
from harness import percentile, table

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.ui import ag_ui_handler, ai_sdk_handler
from rx_allm.ui.serving import start_app, url_of

SLOW = Reply(text=" ".join(f"w{i}" for i in range(400)), chunk_delay=0.05)
BODIES = {
    "/api/chat": {"messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]},
    "/api/agui": {"threadId": "t", "runId": "r", "messages": [{"id": "u", "role": "user", "content": "hi"}]},
}
TARGET_MS = 50.0


async def measure(streams: int) -> list[list[object]]:
    rows: list[list[object]] = []
    async with ProviderEmulator(default=SLOW) as emulator:
        engine = allm.Engine(
            adapter="openai",
            adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "sk-bench-0123456789"},
            model="gpt-bench",
        )
        app = web.Application()
        app.router.add_post("/api/chat", ai_sdk_handler(engine))
        app.router.add_post("/api/agui", ag_ui_handler(engine))
        runner = await start_app(app)
        url = url_of(runner).rstrip("/")
        try:
            async with aiohttp.ClientSession() as session:
                for path, body in BODIES.items():
                    latencies = await _one_path(session, emulator, url + path, body, streams)
                    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
                    rows.append([path, f"{streams}/{streams}", p50, p99])
        finally:
            await runner.cleanup()
    return rows


async def _one_path(
    session: aiohttp.ClientSession,
    emulator: ProviderEmulator,
    url: str,
    body: dict[str, object],
    streams: int,
) -> list[float]:
    latencies = []
    for _ in range(streams):
        seen = len(emulator.disconnects)
        response = await session.post(url, json=body)
        frames = b""
        async with asyncio.timeout(10):
            while frames.count(b"data: ") < 5:
                frames += await response.content.readany()
        closed = time.monotonic()
        response.close()
        await emulator.wait_for_disconnects(seen + 1, timeout=10)
        latencies.append((emulator.disconnects[seen].time - closed) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.streams))
    print(table(["endpoint", "cancelled", "p50 ms", "p99 ms"], rows))
    worst = max(float(str(row[3])) for row in rows)
    verdict = "met" if worst < TARGET_MS else "NOT met"
    print(f"target: p99 under {TARGET_MS:.0f} ms: {worst:.1f} ms ({verdict})")


if __name__ == "__main__":
    main()
