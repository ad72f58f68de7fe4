"""Microseconds per ``generate`` over a 3-entry Fake script (target: under 50 µs).

Run: ``python benchmarks/fake_overhead.py [--calls N] [--rounds R]``. Prints the
median over rounds of the mean per call, by wall clock and by the process's CPU time
(the CPU figure moves less when other processes share the machine); the async
``generate`` path and the synchronous ``stream_generate(...).subscribe`` path are both
measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from harness import table

import rx_allm as allm

SCRIPT = [("text", "hi"), ("text", " there"), ("finish", "stop")]
EVENTS_PER_CALL = 5  # message_started, 2 text_delta, text_completed, message_completed


def engine_and_request() -> tuple[allm.Engine, allm.Request]:
    return allm.Engine(adapter="fake", adapter_opts={"script": SCRIPT}), allm.request([allm.user("say hi")])


async def per_generate(calls: int) -> tuple[float, float]:
    engine, req = engine_and_request()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        response = await allm.generate(engine, req)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert response.output_text == "hi there"
    return wall / calls * 1e6, cpu / calls * 1e6


def per_subscribe(calls: int) -> tuple[float, float]:
    engine, req = engine_and_request()
    seen = [0]

    def on_next(_event: allm.Event) -> None:
        seen[0] += 1

    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        allm.stream_generate(engine, req).subscribe(on_next)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert seen[0] == EVENTS_PER_CALL * calls
    return wall / calls * 1e6, cpu / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(per_generate(min(args.calls, 500)))  # warm-up
    gen = [asyncio.run(per_generate(args.calls)) for _ in range(args.rounds)]
    sub = [per_subscribe(args.calls) for _ in range(args.rounds)]
    rows = [
        [name, f"{statistics.median(r[0] for r in runs):.1f}", f"{statistics.median(r[1] for r in runs):.1f}"]
        for name, runs in (("await generate(engine, req)", gen), ("stream_generate(...).subscribe(...)", sub))
    ]
    print(f"3-entry Fake script, {args.calls:,} calls, median of {args.rounds} round(s)")
    print(table(["path", "us/call", "cpu us/call"], rows))
    wall = statistics.median(r[0] for r in gen)
    print(f"target: < 50 us per generate -> {'met' if wall < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
