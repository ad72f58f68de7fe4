"""Cancellation latency: dispose after the first text delta → the server sees the connection closed.

Run: ``python benchmarks/cancellation.py [--streams N]``.

The benchmark server (another process) sends each stream up to its first text delta and
then nothing; it logs the moment its handler is cancelled because the client's
connection closed. Each client, in a fresh interpreter, opens the streams one after
another and records the moment it gives up on each one:

* ``rx_allm``: ``subscription.dispose()`` called from ``on_next`` at the first ``text_delta``;
* ``openai``: ``async for chunk in stream: ... break`` then ``await stream.close()``;
* ``bare_aiohttp``: ``response.close()`` after the first ``data:`` line with a text delta.

Latency = server-side close time - client-side give-up time, both ``time.monotonic()``
(one system-wide clock on Linux). Target: rx_allm p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aiohttp
from clients import (
    base_url,
    classify,
    endpoint,
    openai_stream,
    pooled_openai,
    request_body,
    request_headers,
    rx_engine,
    rx_request,
)
from harness import (
    bench_server,
    emit,
    installed,
    median,
    now,
    percentile,
    run_client,
    server_log,
    table,
)
from reactivex.abc import DisposableBase

import rx_allm as allm

GAP = 0.02  # seconds between streams, so each close is observed on its own


GiveUp = Callable[[str], Awaitable[float]]


async def rx_allm_client(stack: contextlib.AsyncExitStack, server: str) -> GiveUp:
    """Streams share the library's session, as every rx_allm call in one loop does."""

    async def give_up(tag: str) -> float:
        engine = rx_engine(server, "openai", "stall", 1, tag)
        gave_up: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        subscription: list[DisposableBase] = []

        def on_next(event: allm.Event) -> None:
            if event.type == "text_delta" and not gave_up.done():
                gave_up.set_result(now())
                subscription[0].dispose()

        def on_error(error: Exception) -> None:
            if not gave_up.done():
                gave_up.set_exception(error)

        subscription.append(allm.stream_generate(engine, rx_request()).subscribe(on_next, on_error))
        return await asyncio.wait_for(gave_up, 10)

    return give_up


async def openai_client(stack: contextlib.AsyncExitStack, server: str) -> GiveUp:
    """One ``AsyncOpenAI`` (one connection pool); ``with_options`` points each call at its scenario."""
    client = await pooled_openai(stack, server)

    async def give_up(tag: str) -> float:
        scenario = client.with_options(base_url=base_url(server, "openai", "stall", 1, tag))
        stream = await openai_stream(scenario)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                gave_up = now()
                break
        else:
            raise AssertionError("the stream ended before its first delta")
        await stream.close()
        return gave_up

    return give_up


async def bare_client(stack: contextlib.AsyncExitStack, server: str) -> GiveUp:
    session = await stack.enter_async_context(aiohttp.ClientSession())

    async def give_up(tag: str) -> float:
        response = await session.post(
            endpoint(server, "openai", "stall", 1, tag),
            json=request_body("openai"),
            headers=request_headers("openai"),
        )
        async for line in response.content:
            if line.startswith(b"data: ") and classify("openai", line[6:].strip()) == 1:
                gave_up = now()
                response.close()
                return gave_up
        raise AssertionError("the stream ended before its first delta")

    return give_up


CLIENTS: dict[str, Callable[[contextlib.AsyncExitStack, str], Awaitable[GiveUp]]] = {
    "rx_allm": rx_allm_client,
    "openai": openai_client,
    "bare_aiohttp": bare_client,
}


async def measure(client: str, server: str, streams: int) -> dict[str, float]:
    async with contextlib.AsyncExitStack() as stack:
        give_up = await CLIENTS[client](stack, server)
        await give_up(f"{client}-warm")
        times: dict[str, float] = {}
        for i in range(streams):
            tag = f"{client}-{i}"
            times[tag] = await give_up(tag)
            await asyncio.sleep(GAP)
    return times


def drive(streams: int, timeout: float) -> None:
    rows: list[list[object]] = []
    p99 = float("nan")
    with bench_server() as server:
        for client in CLIENTS:
            if not installed(client):
                rows.append([client, "not installed", "", "", "", ""])
                continue
            gave_up = run_client(__file__, client, ["--server", server, "--streams", str(streams)], timeout)
            closed = server_log(server)["disconnects"]
            latencies = [(closed[tag] - t) * 1000 for tag, t in gave_up.items() if tag in closed]
            rows.append(
                [
                    client,
                    f"{len(latencies)}/{len(gave_up)}",
                    median(latencies),
                    percentile(latencies, 0.99),
                    max(latencies, default=float("nan")),
                    min(latencies, default=float("nan")),
                ]
            )
            if client == "rx_allm":
                p99 = percentile(latencies, 0.99) if len(latencies) == len(gave_up) else float("inf")
    print(f"\ngive up after the first delta -> server sees the close, {streams} streams, milliseconds")
    print(table(["client", "closes seen", "p50 ms", "p99 ms", "max ms", "min ms"], rows))
    print(f"target: rx_allm p99 < 50 ms -> {'met' if p99 < 50 else 'NOT met'} ({p99:.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300.0, help="per client run, seconds")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        emit(asyncio.run(measure(args.client, args.server, args.streams)))
        return
    drive(args.streams, args.timeout)


if __name__ == "__main__":
    main()
