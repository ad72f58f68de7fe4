"""Microseconds per ``generate`` over a 3-entry Fake script (SPEC §8 target: under 50 µs).

Run: ``python benchmarks/fake_overhead.py [--calls N] [--rounds R]``. Prints the
median over rounds of the mean per call; the async ``generate`` path and the
synchronous ``stream_generate(...).subscribe`` path are both measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import rx_allm as allm

SCRIPT = [("text", "hi"), ("text", " there"), ("finish", "stop")]


async def per_generate(calls: int) -> float:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": SCRIPT})
    req = allm.request([allm.user("say hi")])
    start = time.perf_counter()
    for _ in range(calls):
        response = await allm.generate(engine, req)
    elapsed = time.perf_counter() - start
    assert response.output_text == "hi there"
    return elapsed / calls * 1e6


def per_subscribe(calls: int) -> float:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": SCRIPT})
    req = allm.request([allm.user("say hi")])
    sink: list[allm.Event] = []
    start = time.perf_counter()
    for _ in range(calls):
        allm.stream_generate(engine, req).subscribe(sink.append)
    elapsed = time.perf_counter() - start
    assert len(sink) == 5 * calls
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(per_generate(min(args.calls, 500)))  # warm-up
    gen = statistics.median(asyncio.run(per_generate(args.calls)) for _ in range(args.rounds))
    sub = statistics.median(per_subscribe(args.calls) for _ in range(args.rounds))
    print(f"{'path':<40} {'us/call':>8}")
    print(f"{'await generate(engine, req)':<40} {gen:>8.1f}")
    print(f"{'stream_generate(...).subscribe(...)':<40} {sub:>8.1f}")
    print(f"target: < 50 us per generate -> {'met' if gen < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
