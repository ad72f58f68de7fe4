"""Scale: many concurrent streams in one process, and the memory each open stream holds.

Run: ``python benchmarks/scale.py [--streams 1000] [--chunks 1000] [--single-chunks 50000]
[--clients ...]``.

Against the benchmark server (another process), each client runs in fresh interpreters:

* rate: one stream of ``--single-chunks`` text deltas alone (the median of 3 runs), then
  ``--streams`` streams of ``--chunks`` deltas each, all at once in one event loop over
  one session (rx_allm: the library's; bare aiohttp: one ``ClientSession``; openai: one
  ``AsyncOpenAI``). Every
  stream must complete with all its deltas; aggregate events/s is all deltas over the
  wall time from the first request to the last completion. Target: rx_allm aggregate
  ≥ 0.8x its single-stream figure. Each request has a fixed cost (a connection, aiohttp's
  request and response handling), so the ratio grows with the length of the streams:
  the bare aiohttp row is the floor to compare with at a given ``--chunks``.
* memory: ``--streams`` streams held open (the server sends up to the first delta, then
  waits); once every one has delivered its first delta, the growth of the process RSS and
  of ``tracemalloc``'s traced memory (a second pass, tracing on) divided by the number of
  streams. Then all are disposed/closed and the server must see every connection close.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from clients import (
    MODELS,
    PROMPT,
    READERS,
    base_url,
    classify,
    endpoint,
    read_lines,
    read_rx_allm,
    request_body,
    request_headers,
    rx_engine,
    rx_request,
)
from harness import BENCH_KEY, bench_server, emit, installed, prime, run_client, server_log, table

import rx_allm as allm

CLIENTS = ("rx_allm", "bare_aiohttp", "openai")
WAIT = 120.0  # seconds: bound on any one phase
SINGLE_RUNS = 3  # the single-stream figure is the median of this many runs


def rss() -> int:
    """The resident set size of this process in bytes (Linux ``/proc``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- rate -------------------------------------------------------------------------------
async def rate(client: str, server: str, streams: int, chunks: int, single_chunks: int) -> dict[str, float]:
    read = READERS[client][0]
    await read(server, "openai", 100, "warm")
    singles = []
    for _ in range(SINGLE_RUNS):
        start = time.perf_counter()
        if await read(server, "openai", single_chunks, "single") != single_chunks:
            raise AssertionError("the single stream lost deltas")
        singles.append(single_chunks / (time.perf_counter() - start))
    single = statistics.median(singles)
    async with contextlib.AsyncExitStack() as stack:
        one = await SHARED_READERS[client](stack, server, chunks)
        start = time.perf_counter()
        seen = await asyncio.wait_for(asyncio.gather(*(one(f"c{i}") for i in range(streams))), WAIT)
        aggregate = sum(seen) / (time.perf_counter() - start)
    if seen != [chunks] * streams:
        raise AssertionError(f"{sum(s == chunks for s in seen)} of {streams} streams complete")
    return {"single": single, "aggregate": aggregate, "complete": float(len(seen))}


OneStream = Callable[[str], Awaitable[int]]  # tag -> deltas seen


async def rx_allm_shared(stack: contextlib.AsyncExitStack, server: str, chunks: int) -> OneStream:
    """rx_allm streams of one loop share the library's session."""

    async def one(tag: str) -> int:
        return await read_rx_allm(server, "openai", chunks, tag)

    return one


async def bare_shared(stack: contextlib.AsyncExitStack, server: str, chunks: int) -> OneStream:
    session = await stack.enter_async_context(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))

    async def one(tag: str) -> int:
        return await read_lines(server, "openai", chunks, tag, None, session)

    return one


async def openai_shared(stack: contextlib.AsyncExitStack, server: str, chunks: int) -> OneStream:
    from openai import AsyncOpenAI

    client = await stack.enter_async_context(AsyncOpenAI(base_url=server, api_key=BENCH_KEY, max_retries=0))

    async def one(tag: str) -> int:
        scenario = client.with_options(base_url=base_url(server, "openai", "full", chunks, tag))
        stream = await scenario.chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        return sum([1 async for c in stream if c.choices and c.choices[0].delta.content])

    return one


SHARED_READERS: dict[str, Callable[[contextlib.AsyncExitStack, str, int], Awaitable[OneStream]]] = {
    "rx_allm": rx_allm_shared,
    "bare_aiohttp": bare_shared,
    "openai": openai_shared,
}


# -- memory -----------------------------------------------------------------------------
class OpenStreams:
    """``streams`` streams held open after their first delta; ``close()`` ends them all."""

    async def open(self, server: str, streams: int, prefix: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class RxStreams(OpenStreams):
    async def open(self, server: str, streams: int, prefix: str) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        waiting = [streams]

        def on_next(event: allm.Event) -> None:
            if event.type == "text_delta":
                waiting[0] -= 1
                if waiting[0] == 0:
                    ready.set_result(None)

        def on_error(error: Exception) -> None:
            if not ready.done():
                ready.set_exception(error)

        self.subscriptions = [
            allm.stream_generate(
                rx_engine(server, "openai", "stall", 1, f"{prefix}{i}"), rx_request()
            ).subscribe(on_next, on_error)
            for i in range(streams)
        ]
        await asyncio.wait_for(ready, WAIT)

    async def close(self) -> None:
        for subscription in self.subscriptions:
            subscription.dispose()
        self.subscriptions = []


class BareStreams(OpenStreams):
    async def open(self, server: str, streams: int, prefix: str) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

        async def first_delta(tag: str) -> aiohttp.ClientResponse:
            response = await self.session.post(
                endpoint(server, "openai", "stall", 1, tag),
                json=request_body("openai"),
                headers=request_headers("openai"),
            )
            async for line in response.content:
                if line.startswith(b"data: ") and classify("openai", line[6:].strip()) == 1:
                    return response
            raise AssertionError("the stream ended before its first delta")

        self.responses = await asyncio.wait_for(
            asyncio.gather(*(first_delta(f"{prefix}{i}") for i in range(streams))), WAIT
        )

    async def close(self) -> None:
        for response in self.responses:
            response.close()
        self.responses = []
        await self.session.close()


class OpenAIStreams(OpenStreams):
    async def open(self, server: str, streams: int, prefix: str) -> None:
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(base_url=server, api_key=BENCH_KEY, max_retries=0)

        async def first_delta(tag: str) -> Any:
            scenario = self.client.with_options(base_url=base_url(server, "openai", "stall", 1, tag))
            stream = await scenario.chat.completions.create(
                model=MODELS["openai"], messages=[{"role": "user", "content": PROMPT}], stream=True
            )
            iterator = stream.__aiter__()
            while not ((chunk := await iterator.__anext__()).choices and chunk.choices[0].delta.content):
                pass
            return stream, iterator

        self.streams = await asyncio.wait_for(
            asyncio.gather(*(first_delta(f"{prefix}{i}") for i in range(streams))), WAIT
        )

    async def close(self) -> None:
        for stream, _iterator in self.streams:
            await stream.close()
        self.streams = []
        await self.client.close()


HOLDERS: dict[str, Callable[[], OpenStreams]] = {
    "rx_allm": RxStreams,
    "bare_aiohttp": BareStreams,
    "openai": OpenAIStreams,
}


async def memory(client: str, server: str, streams: int) -> dict[str, float]:
    warm = HOLDERS[client]()
    await warm.open(server, 2, f"{client}-mw-")
    await warm.close()
    holder = HOLDERS[client]()
    gc.collect()
    before = rss()
    await holder.open(server, streams, f"{client}-m1-")
    gc.collect()
    grown = rss() - before
    await holder.close()
    await asyncio.sleep(0.1)  # let the closes settle before tracing
    gc.collect()
    tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    await holder.open(server, streams, f"{client}-m2-")
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced_before
    tracemalloc.stop()
    await holder.close()
    await asyncio.sleep(0.1)  # the server logs the closes
    return {"rss_per_stream": grown / streams, "traced_per_stream": traced / streams}


# -- driver -------------------------------------------------------------------------------
def drive(streams: int, chunks: int, single_chunks: int, timeout: float, clients: list[str]) -> None:
    rate_rows: list[list[object]] = []
    memory_rows: list[list[object]] = []
    ratio = float("nan")
    with bench_server() as server:
        for size in (100, chunks, single_chunks):
            prime(server, "openai", size)
        for client in clients:
            if not installed(client):
                rate_rows.append([client, "not installed", "", "", ""])
                memory_rows.append([client, "not installed", "", ""])
                continue
            args = ["--server", server, "--streams", str(streams), "--chunks", str(chunks)]
            r = run_client(
                __file__, client, [*args, "--phase", "rate", "--single-chunks", str(single_chunks)], timeout
            )
            m = run_client(__file__, client, [*args, "--phase", "memory"], timeout)
            closed = server_log(server)["disconnects"]
            seen = sum(1 for tag in closed if tag.startswith((f"{client}-m1-", f"{client}-m2-")))
            rate_rows.append(
                [
                    client,
                    f"{int(r['complete'])}/{streams}",
                    r["single"],
                    r["aggregate"],
                    r["aggregate"] / r["single"],
                ]
            )
            memory_rows.append(
                [
                    client,
                    f"{m['rss_per_stream'] / 1024:.1f}",
                    f"{m['traced_per_stream'] / 1024:.1f}",
                    f"{seen}/{2 * streams}",
                ]
            )
            if client == "rx_allm":
                ratio = r["aggregate"] / r["single"]
    print(
        f"\n{streams} concurrent streams of {chunks} deltas vs one stream of {single_chunks} (openai format)"
    )
    print(table(["client", "complete", "single ev/s", "aggregate ev/s", "aggregate/single"], rate_rows))
    print(f"\nmemory per open stream ({streams} streams held open after their first delta)")
    print(table(["client", "RSS KiB/stream", "traced KiB/stream", "closes seen by server"], memory_rows))
    print(f"target: rx_allm aggregate >= 0.8x single -> {'met' if ratio >= 0.8 else 'NOT met'} ({ratio:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=1000, help="deltas per concurrent stream")
    parser.add_argument("--single-chunks", type=int, default=50_000, help="deltas of the single stream")
    parser.add_argument("--timeout", type=float, default=600.0, help="per client run, seconds")
    parser.add_argument(
        "--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS), help="only these clients"
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["rate", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        if args.phase == "rate":
            emit(asyncio.run(rate(args.client, args.server, args.streams, args.chunks, args.single_chunks)))
        else:
            emit(asyncio.run(memory(args.client, args.server, args.streams)))
        return
    drive(args.streams, args.chunks, args.single_chunks, args.timeout, args.clients)


if __name__ == "__main__":
    main()
