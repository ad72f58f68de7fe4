"""Per-chunk cost of each stage of rx_allm's receive path, in process, without the network.

Run: ``python benchmarks/stages.py [--chunks N] [--rounds R] [--provider openai|anthropic]
[--read-size BYTES]``.

The body the benchmark server would send is cut into reads (16 KiB, as the transport
takes them) and pushed through growing prefixes of the path; each row is the best over
rounds of the process's CPU time per chunk (the least disturbed figure on a busy
machine), and the difference between rows is what that stage costs:

1. ``bytes.split`` + ``json.loads`` per ``data:`` line (what the bare reader does),
2. ``SSEDecoder.feed`` alone, then with the payloads parsed as the mappers parse them,
3. decoder + the provider's ``StreamMapper`` (events appended to a list),
4. the same inside an Observable delivered through the runner's two operators
   (``do_action(on_event)`` + ``filter(keep)``) to a subscriber — the full path minus the socket.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import reactivex
from bench_server import body
from harness import table
from reactivex import abc
from reactivex import operators as ops

from rx_allm._sse import SSEDecoder
from rx_allm.adapter import StreamMapper
from rx_allm.events import Event
from rx_allm.providers.anthropic import AnthropicMapper
from rx_allm.providers.openai import ChatCompletionsMapper
from rx_allm.runner import event_filter

READ_SIZE = 16 * 1024  # what the transport takes per read
MAPPERS: dict[str, Callable[[Callable[[Event], None]], StreamMapper]] = {
    "openai": ChatCompletionsMapper,
    "anthropic": AnthropicMapper,
}


def reads(provider: str, chunks: int, size: int = READ_SIZE) -> list[bytes]:
    data = body(provider, chunks)
    return [data[i : i + size] for i in range(0, len(data), size)]


def bare(provider: str, pieces: list[bytes]) -> None:
    tail = b""
    for piece in pieces:
        lines = (tail + piece).split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]"):
                json.loads(line[6:])


def decode(provider: str, pieces: list[bytes]) -> None:
    decoder = SSEDecoder()
    for piece in pieces:
        decoder.feed(piece)


def decode_parse(provider: str, pieces: list[bytes]) -> None:
    decoder = SSEDecoder()
    mapper = MAPPERS[provider](lambda _event: None)
    for piece in pieces:
        for event in decoder.feed(piece):
            if not event.data.startswith("[DONE]"):
                mapper.json_object(event.data)


def decode_map(provider: str, pieces: list[bytes]) -> None:
    out: list[Event] = []
    decoder = SSEDecoder()
    mapper = MAPPERS[provider](out.append)
    mapper.start()
    for piece in pieces:
        for event in decoder.feed(piece):
            mapper.feed(event)
        out.clear()


def receive(provider: str, pieces: list[bytes]) -> reactivex.Observable[Event]:
    """The receive path (decoder + mapper over the reads) as an Observable of events."""

    def subscribe(observer: abc.ObserverBase[Event], _scheduler: abc.SchedulerBase | None = None) -> None:
        out: list[Event] = []
        decoder = SSEDecoder()
        mapper = MAPPERS[provider](out.append)
        mapper.start()
        for piece in pieces:
            for event in decoder.feed(piece):
                mapper.feed(event)
            for item in out:
                observer.on_next(item)
            out.clear()
        observer.on_completed()

    return reactivex.create(subscribe)


def full(provider: str, pieces: list[bytes]) -> None:
    """Decoder and mapper inside an Observable, through ``do_action`` + ``filter`` to a subscriber."""
    seen = [0]

    def on_event(event: Event) -> None:
        if event.type == "text_delta":
            seen[0] += 1

    source = receive(provider, pieces).pipe(
        ops.do_action(on_event), ops.filter(event_filter(True, True, False))
    )
    source.subscribe(on_next=lambda _event: None)


STAGES: list[tuple[str, Callable[[str, list[bytes]], None]]] = [
    ("bare: split lines + json.loads", bare),
    ("SSEDecoder.feed", decode),
    ("SSEDecoder + payload parsing", decode_parse),
    ("SSEDecoder + StreamMapper", decode_map),
    ("+ Observable, do_action, filter, subscriber", full),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--provider", choices=sorted(MAPPERS), default="openai")
    parser.add_argument("--read-size", type=int, default=READ_SIZE, help="bytes per read")
    args = parser.parse_args()
    pieces = reads(args.provider, args.chunks, args.read_size)
    rows: list[list[object]] = []
    for name, stage in STAGES:
        stage(args.provider, pieces)  # warm-up
        times = []
        for _ in range(args.rounds):
            start = time.process_time()
            stage(args.provider, pieces)
            times.append(time.process_time() - start)
        per_chunk = min(times) / args.chunks * 1e6
        rows.append([name, f"{per_chunk:.2f}", f"{1e6 / per_chunk:,.0f}"])
    print(
        f"{args.provider} format, {args.chunks:,} chunks in {len(pieces)} reads of {args.read_size:,} bytes"
    )
    print(table(["stage (cumulative)", "us/chunk", "chunks/s"], rows))


if __name__ == "__main__":
    main()
