"""Our endpoints' real bytes through the real client packages, in Node.

The test starts the provider emulator (answering like ``rx-allm serve``'s emulated model,
which calls the demo calculator for arithmetic) and an aiohttp server with
:func:`~rx_allm.ui.ai_sdk_handler` and :func:`~rx_allm.ui.ag_ui_handler`, then runs
``node --test web/test/``: the ``ai`` package's default chat transport (which validates
every chunk against its schema) and ``readUIMessageStream``, and ``@ag-ui/client``'s
``HttpAgent``, assemble the messages and the Node tests assert them. ``/responses/api/chat``,
``/anthropic/api/chat`` and ``/gemini/api/chat`` answer through those providers' emulated
APIs with reasoning on and a tool the browser runs (``@ai-sdk/react``'s ``Chat``, the class
``useChat`` wraps, sends files, runs the tool and sends the follow-up the emulator validates);
``/<provider>/api/agui`` likewise for ``HttpAgent``, which declares the tool itself.
The Node packages come from ``web/package-lock.json`` (``npm ci`` in ``.ci/run``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from helpers import openai_engine, thinking_engine
from ui_support import answer, serving

import rx_allm as allm
from rx_allm.orchestration.demo_tools import DEMO_TOOLS
from rx_allm.testing.emulator import ProviderEmulator, RecordedRequest, Reply, ToolCallSpec
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


#: The tool of the ``/<provider>/api/chat`` routes: the browser runs it.
WEATHER = allm.tool(name="get_weather", description="The weather in a city", schema={"type": "object"})


def respond(sent: RecordedRequest) -> Reply:
    """OpenAI: :func:`answer`. Anthropic and Gemini: name the image received; else think and
    call get_weather; once its result is back, answer."""
    if sent.provider == "openai":
        return answer(sent)
    body = json.dumps(sent.json)
    images = re.findall(
        r'"(?:media_type|mimeType)": "(image/[a-z]+)"|"image_url": "data:(image/[a-z]+)', body
    )
    if images:
        kind = "".join(images[0])
        return Reply(text=f"I see {'one' if len(images) == 1 else len(images)} {kind} image.")
    if any(f'"{answer}"' in body for answer in ("tool_result", "functionResponse", "function_call_output")):
        return Reply(text="Sunny." if signed(sent) else "The reasoning's signature did not come back.")
    call = ToolCallSpec("get_weather", {"city": "Oslo"})
    return Reply(text="Let me check.", thinking="The user wants weather.", tool_calls=[call])


def signed(sent: RecordedRequest) -> bool:
    """The follow-up continues the signed reasoning: Anthropic's thinking block (thinking still
    on), Responses' reasoning item, or Gemini's own signature on the call (not the stand-in
    the adapter adds)."""
    if sent.provider == "anthropic":
        turn = sent.json["messages"][-2]["content"]
        return "thinking" in sent.json and turn[0]["type"] == "thinking"
    if sent.provider == "responses":
        return any(item.get("type") == "reasoning" for item in sent.json["input"])
    body = json.dumps(sent.json)
    return '"thoughtSignature"' in body and "skip_thought_signature_validator" not in body


@pytest_asyncio.fixture
async def server() -> AsyncIterator[str]:
    async with ProviderEmulator(responder=respond) as emulator:
        engine = openai_engine(emulator, model="gpt-test")
        app = web.Application()
        app.router.add_post("/api/chat", ai_sdk_handler(engine, tools=DEMO_TOOLS))
        app.router.add_post("/api/agui", ag_ui_handler(engine, tools=DEMO_TOOLS))
        thinking = allm.Engine(adapter="fake", adapter_opts={"script": REASONING})
        app.router.add_post("/reasoning/api/chat", ai_sdk_handler(thinking))
        app.router.add_post("/reasoning/api/agui", ag_ui_handler(thinking))
        for provider in ("responses", "anthropic", "gemini"):
            handler = ai_sdk_handler(thinking_engine(emulator, provider), tools=[WEATHER])
            app.router.add_post(f"/{provider}/api/chat", handler)
            app.router.add_post(f"/{provider}/api/agui", ag_ui_handler(thinking_engine(emulator, provider)))
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
    assert "# pass 32" in report, report
