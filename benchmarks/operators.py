"""The cost of the production operators: tracing off / on, partial objects per delta.

Run: ``python benchmarks/operators.py [--calls N] [--deltas D] [--rounds R]``.

* OpenTelemetry: microseconds per ``stream_generate(...).subscribe`` over a 3-entry Fake
  script, with tracing never enabled (the runner's hook is ``None``), after
  ``rx_allm.otel.instrument()`` with the API's no-op providers (no SDK configured), and
  with the SDK (an in-memory span exporter and metric reader). Also whether importing
  ``rx_allm`` imports ``opentelemetry`` (it must not).
* ``partial_output``: microseconds per text delta for a JSON answer of ``--deltas``
  deltas (about 9 bytes each), against the same stream without the operator.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from harness import table
from pydantic import BaseModel

import rx_allm as allm

SCRIPT = [("text", "hi"), ("text", " there"), ("finish", "stop")]
REQ = allm.request([allm.user("say hi")])


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class Catalog(BaseModel):
    title: str
    items: list[Item]


def per_call(calls: int, engine: allm.Engine) -> float:
    """Microseconds (CPU time of the process) per subscribed Fake stream."""
    cpu = time.process_time()
    for _ in range(calls):
        allm.stream_generate(engine, REQ).subscribe(lambda _event: None)
    return (time.process_time() - cpu) / calls * 1e6


def tracing_rows(calls: int, rounds: int) -> list[list[object]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    engine = allm.Engine(adapter="fake", adapter_opts={"script": SCRIPT})
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    sdk = {"tracer_provider": tracer_provider, "meter_provider": MeterProvider([InMemoryMetricReader()])}
    setups: list[tuple[str, Callable[[], None]]] = [
        ("tracing never enabled", allm.otel.uninstrument),
        ("instrument(), no-op API providers", lambda: allm.otel.instrument()),
        ("instrument(), SDK in-memory exporters", lambda: allm.otel.instrument(**sdk)),
    ]
    rows: list[list[object]] = []
    baseline = 0.0
    for name, setup in setups:
        setup()
        per_call(min(calls, 500), engine)  # warm-up
        cost = statistics.median(per_call(calls, engine) for _ in range(rounds))
        exporter.clear()
        baseline = baseline or cost
        rows.append([name, f"{cost:.1f}", f"{cost / baseline:.2f}x"])
    allm.otel.uninstrument()
    return rows


def answer(deltas: int) -> list[str]:
    items = [{"name": f"item {i}", "price": i * 1.25, "tags": ["a", "b"]} for i in range(deltas // 6 + 1)]
    text = json.dumps({"title": "catalog", "items": items})
    size = max(1, len(text) // deltas)
    return [text[i : i + size] for i in range(0, len(text), size)]


def per_delta(parts: list[str], operator: Any, rounds: int) -> float:
    engine = allm.Engine(
        adapter="fake", adapter_opts={"script": [*(("text", p) for p in parts), ("finish", "stop")]}
    )
    runs = []
    for _ in range(rounds):
        source = allm.stream_generate(engine, REQ)
        cpu = time.process_time()
        (source.pipe(operator) if operator is not None else source).subscribe(lambda _item: None)
        runs.append((time.process_time() - cpu) / len(parts) * 1e6)
    return statistics.median(runs)


def hook_check_ns(rounds: int) -> float:
    """Nanoseconds the runner spends per call on tracing while it is not enabled."""
    from rx_allm import runner

    loops = 1_000_000
    runs = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(loops):
            if runner.stream_hook is not None:
                raise AssertionError("tracing is enabled")
        runs.append((time.perf_counter_ns() - start) / loops)
    return statistics.median(runs)


def imports_opentelemetry() -> bool:
    code = "import sys, rx_allm; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip() == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--deltas", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    print(f"OpenTelemetry: 3-entry Fake script, {args.calls:,} calls, median of {args.rounds} round(s)")
    print(table(["tracing", "cpu us/call", "vs never enabled"], tracing_rows(args.calls, args.rounds)))
    check = hook_check_ns(args.rounds)
    print(f"runner's check while tracing is not enabled (loop included): {check:.0f} ns/call")
    print(f"import rx_allm imports opentelemetry: {imports_opentelemetry()}")
    print()
    parts = answer(args.deltas)
    plain = per_delta(parts, None, args.rounds)
    partial = per_delta(parts, allm.partial_output(Catalog), args.rounds)
    size = sum(map(len, parts))
    print(f"partial_output: {len(parts)} deltas, {size:,} bytes of JSON, median of {args.rounds} round(s)")
    print(
        table(
            ["stream", "cpu us/delta"],
            [["events only", f"{plain:.1f}"], ["pipe(partial_output(Catalog))", f"{partial:.1f}"]],
        )
    )


if __name__ == "__main__":
    main()
