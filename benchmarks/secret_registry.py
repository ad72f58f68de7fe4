"""The cost of remembering API keys: registering one more key, and redacting a text, at 100 to 10,000 keys.

Run: ``python benchmarks/secret_registry.py [--sizes 100 1000 10000] [--text-bytes 1024]``.

A service that brings its users' own keys registers thousands. For each size, in a fresh
interpreter (the registry is process-wide): the median time to register each key, one by one
(each ``remember_secret`` as an adapter calls it when it resolves a key), the time of the
last 100 registrations (the cost of one more key once the registry is that big), the
traced memory the registry grew by per key (``tracemalloc``), and the time to ``redact`` an
error message of ``--text-bytes`` bytes quoting one of the keys, URL-encoded. Targets: the
cost of one more key does not grow with the number of keys; memory per key is a few
hundred bytes (the key itself and an index entry).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.parse
from typing import Any

from harness import table

REDACT_ROUNDS = 200


def measure(size: int, text_bytes: int) -> dict[str, Any]:
    """One size, measured in this (fresh) interpreter."""
    from rx_allm._redact import redact, remember_secret

    keys = [f"tenant-{i:06d}-{secrets.token_urlsafe(24)}" for i in range(size)]
    times = []
    for key in keys:
        start = time.perf_counter()
        remember_secret(key)
        times.append(time.perf_counter() - start)
    more = [f"other-{i:06d}-{secrets.token_urlsafe(24)}" for i in range(size)]
    tracemalloc.start()  # a second set of as many keys, traced (tracing slows the timings above)
    before = tracemalloc.get_traced_memory()[0]
    for key in more:
        remember_secret(key)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    echo = urllib.parse.quote(keys[size // 2], safe="")
    filler = "x" * max(0, text_bytes - len(echo) - 40)
    text = f"Incorrect API key provided: {echo}. {filler}"
    assert echo not in redact(text) and "[REDACTED]" in redact(text)
    start = time.perf_counter()
    for _ in range(REDACT_ROUNDS):
        redact(text)
    return {
        "keys": size,
        "register_us": statistics.median(times) * 1e6,
        "last100_us": statistics.mean(times[-100:]) * 1e6,
        "bytes_per_key": grown / size,
        "redact_us": (time.perf_counter() - start) / REDACT_ROUNDS * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--text-bytes", type=int, default=1024)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.text_bytes)))
        return
    rows = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--child", str(size), "--text-bytes", str(args.text_bytes)]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        rows.append(
            [
                result["keys"],
                f"{result['register_us']:.2f}",
                f"{result['last100_us']:.2f}",
                f"{result['bytes_per_key']:.0f}",
                f"{result['redact_us']:.1f}",
            ]
        )
    headers = [
        "keys",
        "us/register (median)",
        "us/register (last 100)",
        "bytes/key",
        f"us/redact {args.text_bytes} B",
    ]
    print(table(headers, rows))
    print("target: registering one more key costs the same at every size; bytes/key stays a few hundred")


if __name__ == "__main__":
    main()
