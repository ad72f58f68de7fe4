"""The relay: events/s through one generation, viewer latency, memory, and stop -> provider close.

Run: ``python benchmarks/relay.py [--events 100000] [--paced 2000] [--interval 0.001] [--stops 20]``.

* RedisRelay (a real ``redis-server`` on 127.0.0.1, persistence off): the producer and the
  viewer are two fresh processes. Throughput: the producer starts a generation of
  ``--events`` text deltas (built beforehand); the viewer, attached before the first
  entry, reads it live to the terminal. events/s = events / (viewer's terminal time -
  producer's start time) — both ``time.monotonic``, one clock for every process of a
  machine. Latency: ``--paced`` deltas, one every ``--interval`` seconds, each holding its
  emit time; latency = the viewer's receive time - that. Memory: ``MEMORY USAGE`` of the
  generation's stream after the throughput run, per 1,000 entries.
* MemoryRelay: the same figures in one process (memory: ``tracemalloc`` growth while the
  log holds the events, per 1,000).
* direct: the same source subscribed directly (no relay), the floor in one process;
  raw redis-py: one ``XADD`` per delta and an ``XREAD BLOCK`` reader in two processes,
  same pacing, no rx_allm — the floor of the latency across processes.
* stop: ``--stops`` generations stream from the benchmark server (one delta, then it
  stalls) in a producer process; another process calls ``stop`` on each; latency = the
  server seeing the connection close - the ``stop`` call.

Every viewer reads through ``rx_allm.iterate`` (``async for``), as a web handler does.
Targets (SPEC §14): RedisRelay >= 50,000 events/s, viewer latency p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import reactivex
from harness import bench_server, emit, median, percentile, server_log, table
from reactivex import operators as ops
from reactivex.disposable import Disposable

import rx_allm as allm
from rx_allm.events import TextDelta
from rx_allm.iterate import iterate
from rx_allm.relay import MemoryRelay, Relay, RelayEntry
from rx_allm.testing.redis_server import RedisServer

WAIT = 120.0


def burst(n: int, per_turn: int = 100) -> reactivex.Observable[TextDelta]:
    """``n`` word-sized deltas (built before the clock starts), ``per_turn`` per loop turn,
    as an adapter emits the events of one network read."""
    events = [TextDelta(id="text-0", delta=f"word{i % 100} ") for i in range(n)]

    def subscribe(observer: Any, scheduler: Any = None) -> Disposable:
        async def run() -> None:
            for start in range(0, n, per_turn):
                for event in events[start : start + per_turn]:
                    observer.on_next(event)
                await asyncio.sleep(0)
            observer.on_completed()

        task = asyncio.get_running_loop().create_task(run())
        return Disposable(lambda: task.cancel() and None)

    return reactivex.create(subscribe)


def paced(n: int, interval: float) -> reactivex.Observable[TextDelta]:
    """``n`` deltas, one every ``interval`` s, each holding its emit time."""
    return reactivex.interval(interval).pipe(
        ops.take(n), ops.map(lambda _: TextDelta(id="text-0", delta=repr(time.monotonic())))
    )


async def read(entries: reactivex.Observable[Any], timed: bool) -> dict[str, Any]:
    """Read to the end: count, the end time, and latencies (ms) when the deltas hold times."""
    count, latencies, cpu = 0, [], time.process_time()
    async for item in iterate(entries):
        event = item.event if isinstance(item, RelayEntry) else item
        if timed:
            latencies.append((time.monotonic() - float(event.delta)) * 1000)
        count += 1
    t_end = time.monotonic()
    return {"count": count, "t_end": t_end, "latencies": latencies, "cpu": time.process_time() - cpu}


# -- child processes (RedisRelay) -------------------------------------------------------------
async def redis_producer(url: str, generation_id: str, events: int, interval: float | None) -> dict[str, Any]:
    from rx_allm.relay import RedisRelay

    relay = RedisRelay(url, maxlen=events + 1)  # keep every entry: the memory figure counts them all
    source = paced(events, interval) if interval else burst(events)
    try:
        await until(lambda: relay.client.exists(f"bench:ready:{generation_id}"))  # the viewer is up
        server_cpu = await redis_cpu(relay)
        t0, cpu = time.monotonic(), time.process_time()
        assert await relay.start(generation_id, source)
        await asyncio.wait_for(relay.wait(generation_id), WAIT)
        written, cpu = time.monotonic(), time.process_time() - cpu
        server_cpu = await redis_cpu(relay) - server_cpu
        memory = await relay.client.memory_usage(relay.keys(generation_id).log, samples=0)
        length = await relay.client.xlen(relay.keys(generation_id).log)
    finally:
        await relay.close()
    return {
        "t0": t0,
        "t_written": written,
        "memory": memory,
        "entries": length,
        "cpu": cpu,
        "server_cpu": server_cpu,
    }


async def redis_cpu(relay: Any) -> float:
    """CPU seconds the Redis server used so far (``INFO cpu``)."""
    info = await relay.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def redis_viewer(url: str, generation_id: str, timed: bool) -> dict[str, Any]:
    from rx_allm.relay import RedisRelay

    relay = RedisRelay(url)
    try:
        await relay.client.set(f"bench:ready:{generation_id}", 1)
        await until(lambda: relay.client.exists(relay.keys(generation_id).claim))
        return await read(relay.observe(generation_id), timed)
    finally:
        await relay.close()


async def until(check: Callable[[], Awaitable[int]]) -> None:
    """Poll ``check`` every 0.5 ms until it is true (bounded)."""
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, "the other process never got there"
        await asyncio.sleep(0.0005)


async def redis_stopper(url: str, generation_ids: list[str]) -> dict[str, float]:
    from rx_allm.relay import RedisRelay

    relay = RedisRelay(url)
    stopped: dict[str, float] = {}
    try:
        for generation_id in generation_ids:
            await asyncio.sleep(0.05)
            stopped[generation_id] = time.monotonic()
            assert await relay.stop(generation_id)
    finally:
        await relay.close()
    return stopped


async def stream_producer(url: str, server: str, generation_ids: list[str]) -> dict[str, Any]:
    from clients import rx_engine, rx_request

    from rx_allm.relay import RedisRelay

    relay = RedisRelay(url, idle_timeout=60.0)
    try:
        for generation_id in generation_ids:
            engine = rx_engine(server, "openai", "stall", 1, generation_id)
            assert await relay.start(generation_id, allm.stream_generate(engine, rx_request()))
        emit({"started": len(generation_ids)})
        for generation_id in generation_ids:
            await asyncio.wait_for(relay.wait(generation_id), WAIT)
    finally:
        await relay.close()
    return {"ended": len(generation_ids)}


async def raw_redis(url: str, role: str, events: int, interval: float) -> dict[str, Any]:
    """The floor without rx_allm: one ``XADD`` per delta every ``interval`` s / ``XREAD BLOCK``."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        if role == "producer":
            await until(lambda: client.exists("bench:raw:ready"))
            for _ in range(events):
                await client.xadd("bench:raw", {b"t": repr(time.monotonic())})
                await asyncio.sleep(interval)
            return {"sent": events}
        await client.set("bench:raw:ready", 1)
        latencies: list[float] = []
        last: bytes | str = "0-0"
        while len(latencies) < events:
            reply = await client.xread({"bench:raw": last}, count=100, block=int(WAIT * 1000))
            for entry_id, fields in reply[0][1]:
                latencies.append((time.monotonic() - float(fields[b"t"])) * 1000)
                last = entry_id
        return {"latencies": latencies}
    finally:
        await client.aclose()


def child(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--client", *command], stdout=subprocess.PIPE, text=True
    )


def result_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=WAIT)
    if process.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({process.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# -- one process (MemoryRelay, direct) --------------------------------------------------------
async def in_process(relay: Relay | None, events: int, count: int, interval: float) -> dict[str, Any]:
    """Throughput and latency through ``relay`` (None: direct subscription) in this process."""

    async def through(source: reactivex.Observable[Any], generation_id: str, timed: bool) -> dict[str, Any]:
        if relay is None:
            return await read(source, timed)
        assert await relay.start(generation_id, source)
        return await read(relay.observe(generation_id), timed)

    source = burst(events)
    t0 = time.monotonic()
    fast = await through(source, "bench-throughput", False)
    slow = await through(paced(count, interval), "bench-latency", True)
    assert fast["count"] == events and slow["count"] == count
    return {"events_s": events / (fast["t_end"] - t0), "latencies": slow["latencies"]}


async def memory_relay_bytes(events: int) -> float:
    """``tracemalloc`` growth per 1,000 events while a MemoryRelay log holds them."""
    relay = MemoryRelay()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    assert await relay.start("bench-memory", burst(events))
    await read(relay.observe("bench-memory"), False)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    await relay.close()
    return held / events * 1000


# -- the driver --------------------------------------------------------------------------------
def redis_pair(url: str, generation_id: str, events: int, interval: float | None) -> dict[str, Any]:
    timed = "1" if interval else "0"
    viewer = child(["redis-viewer", url, generation_id, timed])
    producer = child(["redis-producer", url, generation_id, str(events), str(interval or 0)])
    made, seen = result_of(producer), result_of(viewer)
    assert seen["count"] == events and made["entries"] == events + 1, (made, seen)
    per_event = {
        name: cpu / events * 1e6
        for name, cpu in (
            ("producer", made["cpu"]),
            ("viewer", seen["cpu"]),
            ("redis-server", made["server_cpu"]),
        )
    }
    return {
        "events_s": events / (seen["t_end"] - made["t0"]),
        "latencies": seen["latencies"],
        "bytes_per_1000": made["memory"] / made["entries"] * 1000,
        "cpu_us": per_event,
    }


def raw_pair(url: str, events: int, interval: float) -> list[float]:
    """Latencies (ms) of plain ``XADD`` -> ``XREAD BLOCK`` between two processes, same pacing."""
    viewer = child(["raw", url, "viewer", str(events), str(interval)])
    result_of(child(["raw", url, "producer", str(events), str(interval)]))
    latencies: list[float] = result_of(viewer)["latencies"]
    return latencies


def stop_latency(url: str, stops: int) -> list[float]:
    """Stop from another process -> the benchmark server sees the connection close (ms)."""
    ids = [f"bench-stop-{i}" for i in range(stops)]
    with bench_server() as server:
        producer = child(["stream-producer", url, server, *ids])
        assert producer.stdout is not None
        assert json.loads(producer.stdout.readline()) == {"started": stops}
        time.sleep(0.5)  # every stream delivered its first delta and stalls
        stopped = result_of(child(["redis-stopper", url, *ids]))
        result_of(producer)
        closed = server_log(server)["disconnects"]
    return [(closed[g] - t) * 1000 for g, t in stopped.items() if g in closed]


def drive(args: argparse.Namespace) -> None:
    rows: list[list[object]] = []
    with RedisServer() as server:
        fast = redis_pair(server.url, "bench-throughput", args.events, None)
        slow = redis_pair(server.url, "bench-latency", args.paced, args.interval)
        stops = stop_latency(server.url, args.stops)
        floor = raw_pair(server.url, args.paced, args.interval)
    for name, relay in (("direct", None), ("MemoryRelay", MemoryRelay())):
        got = asyncio.run(in_process(relay, args.events, args.paced, args.interval))
        memory = asyncio.run(memory_relay_bytes(args.events)) if relay is not None else float("nan")
        rows.append(_row(name, got["events_s"], got["latencies"], memory))
    rows.append(_row("RedisRelay", fast["events_s"], slow["latencies"], fast["bytes_per_1000"]))
    rows.append(_row("raw redis-py (floor)", float("nan"), floor, float("nan")))
    print(
        f"\none generation: {args.events:,} deltas for events/s; {args.paced:,} deltas every "
        f"{args.interval * 1000:g} ms for latency (RedisRelay: producer and viewer in two processes)"
    )
    print(table(["path", "events/s", "p50 ms", "p99 ms", "max ms", "bytes/1000 events"], rows))
    print(f"\nstop from another process -> provider connection closed, {len(stops)}/{args.stops} seen")
    print(
        table(
            ["relay", "p50 ms", "p99 ms", "max ms"],
            [["RedisRelay", median(stops), percentile(stops, 0.99), max(stops, default=float("nan"))]],
        )
    )
    cpu = fast["cpu_us"]
    print(f"\nRedisRelay CPU per event (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(table(["process", "us/event", "events/s one core each"], [[n, c, 1e6 / c] for n, c in cpu.items()]))
    p99 = percentile(slow["latencies"], 0.99)
    print(
        f"targets: RedisRelay >= 50,000 events/s -> {'met' if fast['events_s'] >= 50_000 else 'NOT met'} "
        f"({fast['events_s']:,.0f}); viewer p99 < 5 ms -> {'met' if p99 < 5 else 'NOT met'} ({p99:.2f} ms)"
    )


def _row(name: str, events_s: float, latencies: list[float], memory: float) -> list[object]:
    return [name, events_s, median(latencies), percentile(latencies, 0.99), max(latencies), memory]


def run_child(argv: list[str]) -> None:
    command, rest = argv[0], argv[1:]
    if command == "redis-producer":
        interval = float(rest[3]) or None
        emit(asyncio.run(redis_producer(rest[0], rest[1], int(rest[2]), interval)))
    elif command == "redis-viewer":
        emit(asyncio.run(redis_viewer(rest[0], rest[1], rest[2] == "1")))
    elif command == "redis-stopper":
        emit(asyncio.run(redis_stopper(rest[0], rest[1:])))
    elif command == "raw":
        emit(asyncio.run(raw_redis(rest[0], rest[1], int(rest[2]), float(rest[3]))))
    elif command == "stream-producer":
        emit(asyncio.run(stream_producer(rest[0], rest[1], rest[2:])))
    else:
        raise SystemExit(f"unknown child {command!r}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        run_child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--paced", type=int, default=2_000)
    parser.add_argument("--interval", type=float, default=0.001)
    parser.add_argument("--stops", type=int, default=20)
    drive(parser.parse_args())


if __name__ == "__main__":
    main()
