"""What the benchmark scripts share: the server process, fresh client processes, stats, tables.

Each benchmark script is both the driver (no ``--client``) and the client (``--client
NAME``, run by the driver in a fresh interpreter that prints one JSON line). Peer SDKs
are optional: :func:`installed` tells whether a client's package can be imported, and
the driver prints "not installed" in that client's row instead of running it. The
environment variable ``RX_ALLM_BENCH_HIDE`` (comma-separated client names) makes
installed peers count as missing, to exercise that path.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH_KEY = "sk-bench-0000000000000000"  # the server accepts anything; never a real key
#: The package each client needs beyond the project's own dependencies.
PEER_PACKAGES = {"openai": "openai", "anthropic": "anthropic", "aiohttp_sse_client": "aiohttp_sse_client"}


def installed(client: str) -> bool:
    """Whether the package behind ``client`` can be imported here (and is not hidden)."""
    package = PEER_PACKAGES.get(client)
    if package is None:
        return True
    hidden = os.environ.get("RX_ALLM_BENCH_HIDE", "").split(",")
    return client not in hidden and importlib.util.find_spec(package) is not None


@contextlib.contextmanager
def bench_server(max_seconds: float = 1800.0) -> Iterator[str]:
    """Start ``bench_server.py`` in its own process; yield its base URL; stop it."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "bench_server.py"), "--max-seconds", str(max_seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"benchmark server did not start (got {url!r})")
        yield url
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the server stops at EOF on stdin
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def server_log(url: str) -> dict[str, dict[str, float]]:
    """The server's timing log (``received``, ``first_byte`` and ``disconnects``, by tag)."""
    result: dict[str, dict[str, float]] = _get_json(f"{url}/log")
    return result


def prime(url: str, provider: str, chunks: int) -> None:
    """Have the server render a body before any client is timed."""
    _get_json(f"{url}/prime/{provider}/{chunks}")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return json.load(reply)


def run_client(script: str, client: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``script --client client *args`` in a fresh interpreter; its last stdout line as JSON."""
    proc = subprocess.run(
        [sys.executable, str(HERE / script), "--client", client, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} --client {client} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def emit(result: dict[str, Any]) -> None:
    """A client's result: one JSON line on stdout."""
    print(json.dumps(result), flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table (first column left-aligned, the others right-aligned)."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        line = "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        lines.append(line.rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def now() -> float:
    """The clock shared with the server process (``time.monotonic``)."""
    return time.monotonic()
