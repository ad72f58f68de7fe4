"""``examples/relay_workers.py`` across two worker processes and a real redis-server: a viewer
on one worker follows a generation produced by the other, a refresh on either resumes from
``Last-Event-ID``, and a stop from either closes the provider connection (the emulator sees it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from helpers import sse_frames

from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.redis_server import RedisServer

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parents[1]
WAIT = 20.0
WORDS = [f"w{i}" for i in range(30)]


@pytest_asyncio.fixture
async def workers(
    redis_server: RedisServer, emulator: ProviderEmulator, tmp_path: Path
) -> AsyncIterator[list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-workers-0123456789"}
    args = ["--redis", redis_server.url, "--workers", "2", "--port", "0"]
    stderr = (tmp_path / "stderr").open("wb")  # a file: a full pipe would block the workers
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "relay_workers.py"),
        *args,
        "--base-url",
        emulator.base_url("openai"),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [(await asyncio.wait_for(process.stdout.readline(), WAIT)).decode() for _ in range(2)]
        assert all(line.startswith("worker ") for line in lines), (lines, _tail(tmp_path / "stderr"))
        yield [url for _, url in sorted(line.strip().split(": ", 1) for line in lines)]
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), WAIT)
        stderr.close()
        assert code == 0, _tail(tmp_path / "stderr")


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


async def sse(response: aiohttp.ClientResponse, count: int | None = None) -> list[dict[str, Any]]:
    """SSE frames (``id``, JSON ``data``) until ``count`` frames or the end of the body."""
    raw = await sse_frames(response, lambda got: count is not None and len(got) >= count, WAIT)
    return [{"id": f["id"], "data": json.loads(f["data"])} for f in raw]


def deltas(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["delta"] for f in frames if f["data"]["type"] == "text_delta"]


async def test_a_viewer_on_another_worker_follows_and_a_refresh_anywhere_resumes(
    workers: list[str], emulator: ProviderEmulator
) -> None:
    emulator.default = Reply(text=WORDS, chunk_delay=0.03)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{workers[0]}/generations", json={"prompt": "hi"}) as created:
            assert created.status == 201 and created.headers["X-Worker"] == "0"
            generation_id = (await created.json())["id"]
        watching = await http.get(f"{workers[1]}/generations/{generation_id}/events")
        assert watching.headers["X-Worker"] == "1"
        first = await sse(watching, 5)
        watching.close()  # a refresh: the generation goes on
        resume = {"Last-Event-ID": first[-1]["id"]}
        async with http.get(f"{workers[0]}/generations/{generation_id}/events", headers=resume) as again:
            rest = await sse(again)
    assert rest[-1] == {"id": None, "data": {"type": "done"}}
    assert [w.strip() for w in deltas(first) + deltas(rest)] == WORDS
    assert emulator.posts() == 1 and emulator.disconnects == []


async def test_stop_from_the_other_worker_closes_the_provider_connection(
    workers: list[str], emulator: ProviderEmulator
) -> None:
    emulator.default = Reply(text=WORDS * 20, chunk_delay=0.05)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{workers[1]}/generations", json={"prompt": "hi"}) as created:
            generation_id = (await created.json())["id"]
        async with http.get(f"{workers[0]}/generations/{generation_id}/events") as watching:
            await sse(watching, 2)
            async with http.post(f"{workers[0]}/generations/{generation_id}/stop") as stopped:
                assert await stopped.json() == {"stopped": True}
            await emulator.wait_for_disconnects(1, timeout=WAIT)
            closing = (await sse(watching))[-1]
    assert closing["data"]["type"] == "error" and closing["data"]["error"]["reason"] == "cancelled"
    assert emulator.posts() == 1
