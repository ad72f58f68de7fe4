"""Cost of the browser protocols per event, against the plain event stream, in process.

Run: ``python benchmarks/ui_frames.py [--chunks N] [--rounds R] [--provider openai|anthropic]``.

The body the benchmark server would send (one text delta per chunk) goes through the
whole receive path without the socket — SSE decoder, the provider's mapper, an
Observable through the runner's ``do_action`` + ``filter`` — to a subscriber (the
*plain event stream*), then the same with a frame operator on top:

1. plain event stream → subscriber (the baseline);
2. plain events written as SSE the hand-made way (``event.model_dump_json()`` per event);
3. ``ai_sdk_sse``: AI SDK UI message stream chunks, JSON-encoded as SSE bytes;
4. ``ag_ui_sse``: AG-UI events, JSON-encoded as SSE bytes.

Each row is the best over rounds (the rounds interleave the pipelines) of the process's
CPU time per event; "extra" is the
row's cost over the baseline. Target (SPEC §14): AI SDK frames add ≤ 25%.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from harness import table
from reactivex import Observable
from reactivex import operators as ops
from stages import MAPPERS, reads, receive

from rx_allm.events import Event
from rx_allm.runner import event_filter
from rx_allm.ui import ag_ui_sse, ai_sdk_sse

TARGET = 0.25


def events_of(provider: str, pieces: list[bytes]) -> Observable[Event]:
    """The receive path (decoder + mapper) as an Observable, through the runner's two operators."""
    return receive(provider, pieces).pipe(
        ops.do_action(lambda _event: None), ops.filter(event_filter(True, True, False))
    )


def plain_sse(events: Observable[Event]) -> Observable[bytes]:
    return events.pipe(ops.map(lambda event: b"data: " + event.model_dump_json().encode() + b"\n\n"))


PIPELINES: list[tuple[str, Callable[[Observable[Event]], Observable[Any]]]] = [
    ("plain event stream (baseline)", lambda events: events),
    ("plain events as SSE (model_dump_json)", plain_sse),
    ("ai_sdk_sse (UI message stream)", ai_sdk_sse),
    ("ag_ui_sse (AG-UI)", lambda events: ag_ui_sse(events, thread_id="t", run_id="r")),
]


def run(pipeline: Callable[[Observable[Event]], Observable[Any]], provider: str, pieces: list[bytes]) -> int:
    count = [0]

    def sink(_item: Any) -> None:
        count[0] += 1

    pipeline(events_of(provider, pieces)).subscribe(on_next=sink)
    return count[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--provider", choices=sorted(MAPPERS), default="openai")
    args = parser.parse_args()
    pieces = reads(args.provider, args.chunks)
    events = run(PIPELINES[0][1], args.provider, pieces)
    best = [float("inf")] * len(PIPELINES)
    for pipeline in PIPELINES:
        run(pipeline[1], args.provider, pieces)  # warm-up
    for _ in range(args.rounds):  # rounds interleave the pipelines: a busy machine slows them alike
        for index, (_name, pipeline) in enumerate(PIPELINES):
            start = time.process_time()
            run(pipeline, args.provider, pieces)
            best[index] = min(best[index], time.process_time() - start)
    per_event = [seconds / events * 1e6 for seconds in best]
    baseline = per_event[0]
    rows: list[list[object]] = [
        [name, f"{cost:.2f}", f"{(cost / baseline - 1) * 100:+.0f}%"]
        for (name, _pipeline), cost in zip(PIPELINES, per_event, strict=True)
    ]
    print(f"{args.provider} format, {args.chunks:,} chunks, {events:,} events")
    print(table(["pipeline", "us/event", "extra"], rows))
    extra = per_event[2] / baseline - 1
    verdict = "met" if extra <= TARGET else "NOT met"
    print(f"target: AI SDK frames add <= {TARGET:.0%} per event: {extra:+.0%} ({verdict})")


if __name__ == "__main__":
    main()
