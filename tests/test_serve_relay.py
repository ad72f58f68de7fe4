"""``rx-allm serve --redis``: two server processes share the chats (a refresh resumes and Stop
stops on either one; a closed request never stops a reply), and ``--workers N`` runs N
processes on one port. The one-process app is tested in ``test_ui_handlers.py``."""

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
from rx_allm.testing.redis_server import RedisServer, free_port

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parents[1]
WAIT = 20.0
LONG = Reply(text=" ".join(f"token{i}" for i in range(300)), chunk_delay=0.05)  # ~15 s unless stopped


def body(chat_id: str) -> dict[str, Any]:
    return {
        "id": chat_id,
        "trigger": "submit-message",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Tell me a story"}]}],
    }


async def chunks(response: aiohttp.ClientResponse, deltas: int | None = None) -> list[Any]:
    """UI message stream chunks until ``deltas`` text deltas arrived, or the end (``[DONE]`` kept)."""

    def enough(got: list[dict[str, Any]]) -> bool:
        return deltas is not None and sum('"text-delta"' in f["data"] for f in got) >= deltas

    raw = await sse_frames(response, enough, WAIT)
    return [{"type": "[DONE]"} if f["data"] == "[DONE]" else json.loads(f["data"]) for f in raw]


def texts(found: list[Any]) -> list[str]:
    return [c["delta"] for c in found if c.get("type") == "text-delta"]


async def refresh_follow_and_stop(
    http: aiohttp.ClientSession, sender: str, other: str, emulator: ProviderEmulator, chat_id: str
) -> None:
    """Send on ``sender``, reload, follow and Stop on ``other``; the provider sees one POST and the close."""
    response = await http.post(f"{sender}/api/chat", json=body(chat_id))
    first = texts(await chunks(response, 3))
    response.close()  # the tab reloads
    await asyncio.sleep(0.2)
    assert emulator.disconnects == []
    async with http.get(f"{other}/api/chat/{chat_id}") as history:
        assert (await history.json())["messages"] == body(chat_id)["messages"]
    async with http.get(f"{other}/api/chat/{chat_id}/stream") as follow:
        replayed = await chunks(follow, 6)
        assert texts(replayed)[:3] == first  # from the start, then live
        async with http.post(f"{other}/api/chat/{chat_id}/stop") as stopped:
            assert stopped.status == 204
        await emulator.wait_for_disconnects(1, timeout=WAIT)
        ending = await chunks(follow)
    assert [c["type"] for c in ending[-2:]] == ["abort", "[DONE]"]
    assert emulator.posts() == 1


class Server:
    """``rx-allm serve`` in a child process; ``url`` once it announced itself."""

    def __init__(self, process: asyncio.subprocess.Process, urls: list[str]) -> None:
        self.process = process
        self.urls = urls
        self.url = urls[0]

    @classmethod
    async def start(cls, *args: str, announcements: int = 1, port: int = 0) -> Server:
        """Start it (``port`` 0: any free port) and wait until ``announcements`` processes listen."""
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-serve-0123456789"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rx_allm",
            "serve",
            "--port",
            str(port),
            *args,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert process.stderr is not None
        urls: list[str] = []
        while len(urls) < announcements:
            line = (await asyncio.wait_for(process.stderr.readline(), WAIT)).decode()
            assert line, f"rx-allm serve exited with {await process.wait()}"
            if "rx-allm chat: open " in line:
                urls.append(line.split("rx-allm chat: open ", 1)[1].split()[0].rstrip("/"))
        return cls(process, urls)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), WAIT)


@pytest_asyncio.fixture
async def servers() -> AsyncIterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        await server.stop()


async def test_two_processes_on_one_redis_share_the_chats(
    redis_server: RedisServer, emulator: ProviderEmulator, servers: list[Server]
) -> None:
    emulator.default = LONG
    args = ["--redis", redis_server.url, "--provider", "openai", "--base-url", emulator.base_url("openai")]
    servers.extend([await Server.start(*args), await Server.start(*args)])
    async with aiohttp.ClientSession() as http:
        await refresh_follow_and_stop(http, servers[0].url, servers[1].url, emulator, "chat-redis")


async def test_workers_share_one_port_and_need_redis(
    redis_server: RedisServer, emulator: ProviderEmulator, servers: list[Server]
) -> None:
    refused = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rx_allm",
        "serve",
        "--workers",
        "2",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    _, said = await asyncio.wait_for(refused.communicate(), WAIT)
    assert refused.returncode == 2 and b"needs --redis" in said
    args = ["--redis", redis_server.url, "--workers", "2", "--provider", "openai"]
    base_url = emulator.base_url("openai")
    servers.append(
        server := await Server.start(*args, "--base-url", base_url, announcements=2, port=free_port())
    )
    assert len(server.urls) == 2 and len(set(server.urls)) == 1  # two processes, one port
    async with aiohttp.ClientSession() as http:
        for _ in range(4):
            async with http.get(f"{server.url}/api/info") as info:
                assert (await info.json())["provider"] == "openai"
    assert await server.stop() == 0
