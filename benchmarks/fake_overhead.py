"""Microseconds per ``generate`` over a 3-entry Fake script (targets: under 50 µs, at most 0.5x naive).

Run: ``python benchmarks/fake_overhead.py [--calls N] [--rounds R]``. Prints the
median over rounds of the mean per call, by wall clock and by the process's CPU time
(the CPU figure moves less when other processes share the machine); the async
``generate`` path and the synchronous ``stream_generate(...).subscribe`` path are both
measured, side by side with a naive ``reactivex`` pipeline over the same five events
(built once, as the Fake compiles its script once): ``from_iterable`` → ``do_action`` →
``filter`` → ``reduce`` into the reply text, awaited. Rounds alternate between the paths.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import reactivex
from harness import table
from reactivex import operators as ops

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


def naive_events() -> list[allm.Event]:
    """The Fake's five events, built the plain way."""
    text = "".join(value for tag, value in SCRIPT if tag == "text")
    return [
        allm.MessageStarted(),
        *(allm.TextDelta(delta=value) for tag, value in SCRIPT if tag == "text"),
        allm.TextCompleted(text=text),
        allm.MessageCompleted(message=allm.assistant(text), finish_reason="stop"),
    ]


def naive_fold(text: str, event: allm.Event) -> str:
    return text + event.delta if isinstance(event, allm.TextDelta) else text


async def per_naive(calls: int) -> tuple[float, float]:
    seen = [0]
    events = naive_events()

    def on_event(_event: allm.Event) -> None:
        seen[0] += 1

    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        text = await reactivex.from_iterable(events).pipe(
            ops.do_action(on_event),
            ops.filter(lambda event: event.type != "raw_chunk"),
            ops.reduce(naive_fold, ""),
        )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert text == "hi there" and seen[0] == EVENTS_PER_CALL * calls
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
    asyncio.run(per_naive(min(args.calls, 500)))
    gen: list[tuple[float, float]] = []
    naive: list[tuple[float, float]] = []
    sub: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        gen.append(asyncio.run(per_generate(args.calls)))
        naive.append(asyncio.run(per_naive(args.calls)))
        sub.append(per_subscribe(args.calls))
    paths = (
        ("await generate(engine, req)", gen),
        ("stream_generate(...).subscribe(...)", sub),
        ("naive reactivex pipeline, awaited", naive),
    )
    rows = [
        [name, f"{statistics.median(r[0] for r in runs):.1f}", f"{statistics.median(r[1] for r in runs):.1f}"]
        for name, runs in paths
    ]
    print(f"3-entry Fake script, {args.calls:,} calls, median of {args.rounds} round(s)")
    print(table(["path", "us/call", "cpu us/call"], rows))
    wall = statistics.median(r[0] for r in gen)
    ratio = statistics.median(g[1] / n[1] for g, n in zip(gen, naive, strict=True))
    print(f"target: < 50 us per generate -> {'met' if wall < 50 else 'NOT met'}")
    print(
        f"target: generate <= 0.5x the naive pipeline (CPU, per round) -> {ratio:.2f}x, "
        f"{'met' if ratio <= 0.5 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
