"""Our endpoints' real bytes through the real client packages, in Node.

The test starts the provider emulator (answering like ``rx-allm serve``'s emulated model,
which calls the demo calculator for arithmetic) and an aiohttp server with
:func:`~rx_allm.ui.ai_sdk_handler` and :func:`~rx_allm.ui.ag_ui_handler`, then runs
``node --test web/test/``: the ``ai`` package's default chat transport (which validates
every chunk against its schema) and ``readUIMessageStream``, and ``@ag-ui/client``'s
``HttpAgent``, assemble the messages and the Node tests assert them. The Node packages
come from ``web/package-lock.json`` (``npm ci`` in ``.ci/run``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from helpers import openai_engine
from ui_support import answer, serving

import rx_allm as allm
from rx_allm.orchestration.demo_tools import DEMO_TOOLS
from rx_allm.testing.emulator import ProviderEmulator
from rx_allm.ui import ag_ui_handler, ai_sdk_handler

WEB = Path(__file__).resolve().parent.parent / "web"
NODE = shutil.which("node")
if NODE is None or not (WEB / "node_modules" / "ai").is_dir():
    pytest.skip("the Node tests need node and `npm ci` in web/ (.ci/run does both)", allow_module_level=True)


#: A reply that reasons first (reasoning arrives as ``RawChunk(kind="reasoning_delta")``).
REASONING = [
    ("raw_chunk", "reasoning_delta", {"id": "r1", "delta": "Let me think. "}),
    ("raw_chunk", "reasoning_delta", {"id": "r1", "delta": "6 times 7 is 42."}),
    ("text", "42"),
    ("finish", "stop"),
]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[str]:
    async with ProviderEmulator(responder=answer) as emulator:
        engine = openai_engine(emulator, model="gpt-test")
        app = web.Application()
        app.router.add_post("/api/chat", ai_sdk_handler(engine, tools=DEMO_TOOLS))
        app.router.add_post("/api/agui", ag_ui_handler(engine, tools=DEMO_TOOLS))
        thinking = allm.Engine(adapter="fake", adapter_opts={"script": REASONING})
        app.router.add_post("/reasoning/api/chat", ai_sdk_handler(thinking))
        app.router.add_post("/reasoning/api/agui", ag_ui_handler(thinking))
        async with serving(app) as url:
            yield url


@pytest.mark.asyncio
async def test_node_clients_assemble_our_streams(server: str) -> None:
    assert NODE is not None
    env = {**os.environ, "RX_ALLM_URL": server}
    process = await asyncio.create_subprocess_exec(
        NODE,
        "--test",
        "--test-reporter=tap",
        "test/",
        cwd=WEB,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    report = output.decode()
    assert process.returncode == 0, report
    assert "# fail 0" in report, report
    assert "# pass 14" in report, report
