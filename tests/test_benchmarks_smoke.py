"""Each benchmark script runs once on its smallest size and prints its table (not a timed test).

The scripts start their own server process on 127.0.0.1 and run their clients in fresh
interpreters; here they get tiny sizes and a bounded timeout. Peer SDKs are optional:
a missing one is reported by the script as "not installed", which is also exercised
by hiding the installed peers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
TIMEOUT = 120  # seconds per script; together they take well under a minute

# script, tiny arguments, text its table must contain
CASES = [
    ("fake_overhead.py", ["--calls", "50", "--rounds", "1"], ["await generate(engine, req)", "target"]),
    (
        "operators.py",
        ["--calls", "50", "--deltas", "30", "--rounds", "1"],
        ["tracing never enabled", "imports opentelemetry: False", "partial_output(Catalog)"],
    ),
    ("stages.py", ["--chunks", "200", "--rounds", "1"], ["SSEDecoder + StreamMapper", "us/chunk"]),
    (
        "throughput.py",
        ["--chunks", "300", "--rounds", "1", "--provider", "openai"],
        ["rx_allm", "bare_aiohttp", "chunks/s", "targets:"],
    ),
    ("cancellation.py", ["--streams", "3"], ["rx_allm", "3/3", "p99 ms", "target"]),
    ("secret_registry.py", ["--sizes", "10", "200"], ["us/register (median)", "bytes/key", "target"]),
    ("chat_overhead.py", ["--chats", "20", "--rounds", "1"], ["rx_allm chat (Fake)", "us/chat", "target"]),
    ("ui_frames.py", ["--chunks", "300", "--rounds", "1"], ["ai_sdk_sse", "us/event", "target"]),
    ("ui_disconnect.py", ["--streams", "2"], ["/api/chat", "/api/agui", "2/2", "p99 ms", "target"]),
    ("first_event.py", ["--requests", "3", "--chunks", "5"], ["rx_allm", "bare_aiohttp", "library overhead"]),
    (
        "scale.py",
        ["--streams", "4", "--chunks", "20", "--single-chunks", "200"],
        ["4/4", "aggregate/single", "RSS KiB/stream", "target"],
    ),
    (
        "relay.py",
        ["--events", "500", "--paced", "20", "--stops", "2"],
        ["direct", "MemoryRelay", "RedisRelay", "2/2 seen", "us/event", "targets:"],
    ),
]


def run(script: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(("script", "args", "expected"), CASES, ids=[case[0] for case in CASES])
def test_benchmark_runs_and_prints_its_table(script: str, args: list[str], expected: list[str]) -> None:
    result = run(script, args)
    assert result.returncode == 0, result.stderr[-3000:]
    for text in expected:
        assert text in result.stdout, f"{text!r} missing from:\n{result.stdout}"
    assert "------" in result.stdout  # a table was printed


def test_missing_peers_are_reported_not_run() -> None:
    hidden = {"RX_ALLM_BENCH_HIDE": "openai,anthropic,aiohttp_sse_client"}
    result = run("throughput.py", ["--chunks", "200", "--rounds", "1", "--provider", "openai"], hidden)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "not installed" in rows["openai"]
    assert "not installed" in rows["aiohttp_sse_client"]
    assert "not installed" not in rows["rx_allm"]


def test_chat_overhead_without_pydantic_ai_says_so() -> None:
    result = run(
        "chat_overhead.py", ["--chats", "10", "--rounds", "1"], {"RX_ALLM_BENCH_HIDE": "pydantic_ai"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not installed" in result.stdout and "not measured" in result.stdout
    assert "rx_allm chat (Fake)" in result.stdout
