"""Time to first event: subscribe → first ``text_delta``, and how much of it is the library's.

Run: ``python benchmarks/first_event.py [--requests N] [--chunks C]``.

A fresh client process sends ``N`` requests for rx_allm and for the bare aiohttp reader,
interleaved, each on a warm pooled connection (the openai SDK gets a process of its
own); the benchmark server, in another process, sends each reply's first text delta
alone and the rest 5 ms later, as a model's first token comes, and logs when each
request reached its handler and when it wrote the first body byte. For each request:

* ``ttfe`` — client start (``subscribe`` / the POST) → the first text delta in hand;
* ``server`` — the server's own first-byte time (handler start → first body write);
* ``client side`` — ``ttfe - server``: sending the request, loopback, reading and
  decoding the first chunk, in the client's process;

medians and p99 in milliseconds. The library's overhead is rx_allm's client-side time
minus the bare aiohttp reader's (same stack without the library); target: under 1 ms.
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
    prime,
    run_client,
    server_log,
    table,
)

import rx_allm as allm

FirstDelta = Callable[[str], Awaitable[tuple[float, float]]]  # tag -> (start, first delta)
WARM_UP = 20
INTERLEAVED = (("rx_allm", "bare_aiohttp"), ("openai",))


async def rx_allm_client(stack: contextlib.AsyncExitStack, server: str, chunks: int) -> FirstDelta:
    async def first(tag: str) -> tuple[float, float]:
        engine = rx_engine(server, "openai", "first", chunks, tag)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        seen: list[float] = []

        def on_next(event: allm.Event) -> None:
            if event.type == "text_delta" and not seen:
                seen.append(now())

        start = now()
        allm.stream_generate(engine, rx_request()).subscribe(
            on_next, lambda error: done.set_exception(error), lambda: done.set_result(None)
        )
        await done
        return start, seen[0]

    return first


async def bare_client(stack: contextlib.AsyncExitStack, server: str, chunks: int) -> FirstDelta:
    session = await stack.enter_async_context(aiohttp.ClientSession())

    async def first(tag: str) -> tuple[float, float]:
        seen: list[float] = []
        start = now()
        async with session.post(
            endpoint(server, "openai", "first", chunks, tag),
            json=request_body("openai"),
            headers=request_headers("openai"),
        ) as response:
            async for line in response.content:
                if line.startswith(b"data: ") and classify("openai", line[6:].strip()) == 1 and not seen:
                    seen.append(now())
        return start, seen[0]

    return first


async def openai_client(stack: contextlib.AsyncExitStack, server: str, chunks: int) -> FirstDelta:
    client = await pooled_openai(stack, server)

    async def first(tag: str) -> tuple[float, float]:
        scenario = client.with_options(base_url=base_url(server, "openai", "first", chunks, tag))
        seen: list[float] = []
        start = now()
        stream = await openai_stream(scenario)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and not seen:
                seen.append(now())
        return start, seen[0]

    return first


CLIENTS: dict[str, Callable[[contextlib.AsyncExitStack, str, int], Awaitable[FirstDelta]]] = {
    "rx_allm": rx_allm_client,
    "bare_aiohttp": bare_client,
    "openai": openai_client,
}


async def measure(clients: list[str], server: str, requests: int, chunks: int) -> dict[str, list[float]]:
    """Interleaved requests; ``{tag: [start, first delta]}``."""
    times: dict[str, list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        firsts = {name: await CLIENTS[name](stack, server, chunks) for name in clients}
        for i in range(WARM_UP + requests):
            for name, first in firsts.items():
                start, delta = await first(f"{name}-{i}")
                if i >= WARM_UP:
                    times[f"{name}-{i}"] = [start, delta]
    return times


def drive(requests: int, chunks: int, timeout: float) -> None:
    clients = [name for name in CLIENTS if installed(name)]
    with bench_server() as server:
        prime(server, "openai", chunks)
        args = ["--server", server, "--requests", str(requests), "--chunks", str(chunks)]
        times: dict[str, list[float]] = {}
        for group in INTERLEAVED:  # the SDK's own process: its work does not slow the others
            names = [name for name in group if name in clients]
            if names:
                times.update(run_client(__file__, ",".join(names), args, timeout))
        log = server_log(server)
    client_side: dict[str, float] = {}
    rows: list[list[object]] = []
    for name in CLIENTS:
        if name not in clients:
            rows.append([name, "not installed", "", "", "", ""])
            continue
        ttfe, server_ms, own = [], [], []
        for tag, (start, delta) in times.items():
            if tag.startswith(f"{name}-"):
                ttfe.append((delta - start) * 1000)
                server_ms.append((log["first_byte"][tag] - log["received"][tag]) * 1000)
                own.append(ttfe[-1] - server_ms[-1])
        client_side[name] = median(own)
        rows.append(
            [
                name,
                median(ttfe),
                percentile(ttfe, 0.99),
                median(server_ms),
                median(own),
                percentile(own, 0.99),
            ]
        )
    overhead = client_side["rx_allm"] - client_side["bare_aiohttp"]
    print(f"\ntime to first text delta, {requests} requests per client (interleaved, warm connections), ms")
    print(table(["client", "ttfe p50", "ttfe p99", "server p50", "client side p50", "client side p99"], rows))
    print(
        f"library overhead (rx_allm - bare aiohttp, client side p50): {overhead:.3f} ms"
        f" -> target < 1 ms {'met' if overhead < 1 else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=20, help="deltas per reply")
    parser.add_argument("--timeout", type=float, default=300.0, help="for the client run, seconds")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        emit(asyncio.run(measure(args.client.split(","), args.server, args.requests, args.chunks)))
        return
    drive(args.requests, args.chunks, args.timeout)


if __name__ == "__main__":
    main()
