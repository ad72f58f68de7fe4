"""The examples in ``examples/`` run and do what they say.

``ui_backend`` and ``fan_out`` are imported and run against the provider emulator on
127.0.0.1 (``fan_out`` also as a script); the marble example is a test module itself,
collected by pytest from ``examples/`` (see ``testpaths`` in ``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

import rx_allm as allm
from rx_allm._sse import SSEDecoder
from rx_allm.testing import ProviderEmulator, Reply, ToolCallSpec, record_events
from rx_allm.testing.marbles import assert_completed

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEXT = "Bonjour, voici la réponse."


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ui_backend = load("ui_backend")
fan_out = load("fan_out")


def openai_engine(emulator: ProviderEmulator) -> allm.Engine:
    return allm.Engine(
        adapter="openai",
        adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "sk-example-0000"},
        model="gpt-test",
    )


def test_the_marble_example_is_collected_by_pytest() -> None:
    import tomllib

    config = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())
    assert "examples" in config["tool"]["pytest"]["ini_options"]["testpaths"]
    assert (EXAMPLES / "test_marble_pipeline.py").is_file()


# -- ui_backend ------------------------------------------------------------------------
@pytest_asyncio.fixture
async def ui(emulator: ProviderEmulator) -> AsyncIterator[str]:
    runner = web.AppRunner(ui_backend.make_app(openai_engine(emulator)), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_ui_backend_pushes_each_event_as_sse(ui: str, emulator: ProviderEmulator) -> None:
    emulator.default = Reply(text=TEXT)
    async with aiohttp.ClientSession() as session, session.get(ui + "/chat", params={"prompt": "Salut"}) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        frames = [json.loads(event.data) for event in SSEDecoder().feed(await asyncio.wait_for(r.read(), 10))]

    assert "".join(f["delta"] for f in frames if f["type"] == "text_delta") == TEXT
    assert [f["type"] for f in frames[-2:]] == ["message_completed", "done"]
    assert emulator.posts() == 1
    assert emulator.requests[0].json["messages"] == [{"role": "user", "content": "Salut"}]


@pytest.mark.asyncio
async def test_ui_backend_cancels_the_request_when_the_browser_leaves(
    ui: str, emulator: ProviderEmulator
) -> None:
    emulator.default = Reply(text=" ".join(["word"] * 200), chunk_delay=0.05)
    async with aiohttp.ClientSession() as session:
        response = await session.get(ui + "/chat", params={"prompt": "a long one"})
        decoder = SSEDecoder()
        async with asyncio.timeout(10):
            while not any(
                json.loads(e.data)["type"] == "text_delta"
                for e in decoder.feed(await response.content.readany())
            ):
                pass
        response.close()
        await emulator.wait_for_disconnects(1, timeout=10)
    assert emulator.posts() == 1 and emulator.completed == []


@pytest.mark.asyncio
async def test_ui_backend_forwards_a_typed_error(ui: str, emulator: ProviderEmulator) -> None:
    emulator.default = Reply(status=401)
    async with aiohttp.ClientSession() as session, session.get(ui + "/chat", params={"prompt": "hi"}) as r:
        frames = [json.loads(event.data) for event in SSEDecoder().feed(await asyncio.wait_for(r.read(), 10))]
    assert [(f["type"], f["error"]["reason"]) for f in frames] == [("error", "authentication_failed")]
    assert "sk-example-0000" not in json.dumps(frames)


@pytest.mark.asyncio
async def test_ui_backend_wants_a_prompt(ui: str, emulator: ProviderEmulator) -> None:
    async with aiohttp.ClientSession() as session, session.get(ui + "/chat") as response:
        assert response.status == 400
    assert emulator.posts() == 0


def test_ui_backend_falls_back_to_a_fake_that_types_slowly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    engine = ui_backend.demo_engine()
    records = record_events(allm.stream_generate(engine, allm.request([allm.user("hi")])))
    deltas = [(r.time, r.value.delta) for r in records if isinstance(r.value, allm.TextDelta)]
    assert "".join(delta for _, delta in deltas) == "Hello from the Fake adapter, one word at a time."
    assert [round(t, 6) for t, _ in deltas] == [round(0.1 * i, 6) for i in range(1, 11)]
    assert_completed(records)


# -- fan_out ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_fan_out_sends_one_post_and_every_sink_gets_its_part(
    emulator: ProviderEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.default = Reply(
        text=TEXT,
        tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}, id="call_1")],
        finish="tool_calls",
        usage={"input_tokens": 21, "output_tokens": 13},
    )
    with caplog.at_level(logging.INFO, logger="fan_out"):
        sinks = await asyncio.wait_for(fan_out.run(openai_engine(emulator), "weather?"), 10)

    assert emulator.posts() == 1
    assert emulator.requests[0].json["tools"][0]["function"]["name"] == "get_weather"
    assert sinks.text == TEXT
    assert [(c.id, c.name, c.arguments) for c in sinks.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris"})
    ]
    assert (sinks.meter.input_tokens, sinks.meter.output_tokens, sinks.meter.generations) == (21, 13, 1)
    logged = [r.getMessage() for r in caplog.records if r.name == "fan_out"]
    assert logged[0] == "event message_started" and logged[-1] == "event message_completed"
    assert "event tool_call_completed" in logged


@pytest.mark.asyncio
async def test_fan_out_a_failure_reaches_the_logger_and_is_not_retried(
    emulator: ProviderEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.default = Reply(text=TEXT, error_after=3)
    with caplog.at_level(logging.INFO, logger="fan_out"):
        sinks = await asyncio.wait_for(fan_out.run(openai_engine(emulator), "hi"), 10)

    assert emulator.posts() == 1
    assert sinks.text and TEXT.startswith(sinks.text) and sinks.text != TEXT
    assert sinks.meter.generations == 0 and sinks.tool_calls == []
    warnings = [r for r in caplog.records if r.name == "fan_out" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "provider_unavailable" in warnings[0].getMessage()


def test_fan_out_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "fan_out.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines: dict[str, Any] = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    assert lines["ui"].strip() == "Let me check the weather in Paris."
    assert lines["tools"].strip() == "[('get_weather', {'city': 'Paris'})]"
    assert lines["POSTs received by the emulator"].strip() == "1"
    assert "log:   event message_completed" in result.stderr
