"""Throughput of one large stream: rx_allm against the official SDKs, aiohttp-sse-client and bare aiohttp.

Run: ``python benchmarks/throughput.py [--chunks N] [--rounds R] [--provider openai|anthropic|both]``.

The benchmark server (``bench_server.py``) runs in its own process and serves a
prebuilt body of ``N`` text-delta chunks in the provider's wire format over loopback.
Every client runs in a fresh interpreter, one after another (the order rotates each
round); each reads a 100-chunk warm-up stream, then the measured one. The table gives
medians over the rounds of chunks per second of wall time and of the client process's
CPU time (less sensitive to a busy machine), and the wall-time ratios the targets are
about: rx_allm ≥ 10x the official ``openai`` SDK and ≥ 0.6x the bare reader.
``bare_aiohttp_16k`` is the bare reader taking 16 KiB per read, as rx_allm does.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from clients import READERS
from harness import bench_server, emit, installed, median, prime, run_client, table

PEERS = {"openai": "openai", "anthropic": "anthropic"}
WARM_UP_CHUNKS = 100


async def measure(client: str, server: str, provider: str, chunks: int) -> dict[str, float]:
    read = READERS[client][0]
    if await read(server, provider, WARM_UP_CHUNKS, "warm") != WARM_UP_CHUNKS:
        raise AssertionError(f"{client}: wrong number of deltas in the warm-up stream")
    wall, cpu = time.perf_counter(), time.process_time()
    seen = await read(server, provider, chunks, "measured")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if seen != chunks:
        raise AssertionError(f"{client}: saw {seen} deltas, expected {chunks}")
    return {"wall": wall, "cpu": cpu}


def drive(provider: str, chunks: int, rounds: int, timeout: float, only: list[str] | None) -> None:
    clients = [
        name for name, (_, speaks) in READERS.items() if provider in speaks and (not only or name in only)
    ]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
    runnable = [name for name in clients if installed(name)]
    with bench_server() as server:
        prime(server, provider, WARM_UP_CHUNKS)
        prime(server, provider, chunks)
        for r in range(rounds):
            shift = r % len(runnable)
            for name in runnable[shift:] + runnable[:shift]:
                args = ["--server", server, "--provider", provider, "--chunks", str(chunks)]
                results[name].append(run_client(__file__, name, args, timeout))
    speed = {
        name: (median([chunks / x["wall"] for x in runs]), median([chunks / x["cpu"] for x in runs]))
        for name, runs in results.items()
        if runs
    }
    nan = (float("nan"), float("nan"))
    sdk, bare = speed.get(PEERS[provider], nan)[0], speed.get("bare_aiohttp", nan)[0]
    rows: list[list[object]] = []
    for name in clients:
        if name not in speed:
            rows.append([name, "not installed", "", "", ""])
            continue
        wall, cpu = speed[name]
        rows.append([name, wall, cpu, wall / sdk, wall / bare])
    print(f"\n{provider} format, {chunks:,} chunks, median of {rounds} round(s), one fresh process per run")
    print(table(["client", "chunks/s", "chunks/s (cpu)", f"x {PEERS[provider]} sdk", "x bare"], rows))
    rx = speed.get("rx_allm", nan)[0]
    sdk_target = (
        f"rx_allm >= 10x openai sdk: {_verdict(rx / sdk >= 10, rx / sdk)}"
        if provider == "openai"
        else f"rx_allm / anthropic sdk: {_verdict(True, rx / sdk).replace('met', '(no target)')}"
    )
    print(f"targets: {sdk_target}; rx_allm >= 0.6x bare: {_verdict(rx / bare >= 0.6, rx / bare)}")


def _verdict(ok: bool, ratio: float) -> str:
    if ratio != ratio:  # a client was not installed or not selected
        return "n/a"
    return f"{ratio:.2f} {'met' if ok else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--provider", choices=["openai", "anthropic", "both"], default="both")
    parser.add_argument("--timeout", type=float, default=300.0, help="per client run, seconds")
    parser.add_argument("--clients", nargs="+", choices=sorted(READERS), help="only these clients")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        emit(asyncio.run(measure(args.client, args.server, args.provider, args.chunks)))
        return
    for provider in ("openai", "anthropic") if args.provider == "both" else (args.provider,):
        drive(provider, args.chunks, args.rounds, args.timeout, args.clients)


if __name__ == "__main__":
    main()
