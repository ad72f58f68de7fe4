"""The ``rx-allm`` command, run as a subprocess (``python -m rx_allm``) with a clean environment.

Without a provider key the CLI starts its own provider emulator; the tests that need to
see the wire (error statuses, the disconnect after Ctrl-C) run an emulator of their own
and point ``--provider openai --base-url`` at it. Every subprocess has a bounded timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

import rx_allm as allm
from rx_allm._sse import SSEDecoder
from rx_allm.testing import ProviderEmulator, Reply

KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
DUMMY_KEY = "sk-cli-test-key-000000000000"
TIMEOUT = 60.0
NOTICE = "rx-allm: no provider configured"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any provider key (plus ``extra``)."""
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    return {**env, "PYTHONIOENCODING": "utf-8", **extra}


def rx_allm(*args: str, stdin: str | None = None, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """``rx-allm *args`` (``stdin`` piped in when given), without any provider key."""
    return subprocess.run(
        [sys.executable, "-m", "rx_allm", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=clean_env(**extra_env),
        timeout=TIMEOUT,
        check=False,
    )


@contextlib.asynccontextmanager
async def running(*args: str, **extra_env: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``rx-allm *args`` with piped output; killed (if still running) and reaped at the end."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rx_allm",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(**extra_env),
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.communicate(), TIMEOUT)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- chat with no provider: the built-in emulator -----------------------------------------
def test_chat_without_a_provider_streams_from_the_built_in_emulator() -> None:
    result = rx_allm("chat", "Say hello in French")

    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if line.startswith(NOTICE)]
    assert len(notices) == 1
    assert re.search(r"over real HTTP at http://127\.0\.0\.1:\d+$", notices[0])
    assert result.stdout.startswith("You asked: “Say hello in French”. This answer comes from")
    assert result.stdout.endswith("to talk to a real model.\n")
    usage = re.search(r"finish: stop · usage: (\d+) in / (\d+) out / (\d+) total", result.stderr)
    assert usage and int(usage[2]) >= len(result.stdout.split())  # counted from the text sent


def test_chat_json_prints_one_event_per_line_ending_with_message_completed() -> None:
    result = rx_allm("chat", "hi", "--json")

    assert result.returncode == 0, result.stderr
    events = [allm.parse_event(json.loads(line)) for line in result.stdout.splitlines()]
    assert isinstance(events[0], allm.MessageStarted)
    assert isinstance(events[-1], allm.MessageCompleted)
    assert events[-1].finish_reason == "stop"
    text = "".join(e.delta for e in events if isinstance(e, allm.TextDelta))
    assert text.startswith("You asked: “hi”.") and events[-1].message.text == text


def test_chat_events_prints_every_event_on_its_own_line() -> None:
    result = rx_allm("chat", "hi", "--events")

    assert result.returncode == 0, result.stderr
    kinds = [line.split()[0] for line in result.stdout.splitlines()]
    assert kinds[0] == "message_started" and kinds[-1] == "message_completed"
    assert {"text_delta", "raw_chunk"} <= set(kinds)
    assert 'delta="You"' in result.stdout
    assert 'finish_reason="stop"' in result.stdout.splitlines()[-1]


def test_chat_with_the_fake_provider() -> None:
    result = rx_allm("chat", "hi there", "--provider", "fake")

    assert result.returncode == 0, result.stderr
    assert NOTICE not in result.stderr
    assert result.stdout.startswith("You asked: “hi there”. This answer comes from the Fake adapter")
    assert "HTTP" not in result.stdout  # the Fake does not claim a network it does not use
    assert "finish: stop" in result.stderr


# -- failures ---------------------------------------------------------------------------
def test_a_network_failure_prints_one_line_with_the_reason_and_exits_1() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = rx_allm("chat", "hi", "--provider", "openai", "--base-url", url, OPENAI_API_KEY=DUMMY_KEY)

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("rx-allm: error:")]
    assert len(errors) == 1
    assert errors[0].startswith("rx-allm: error: network_error (AdapterError, openai):")
    assert DUMMY_KEY not in result.stdout + result.stderr


def test_a_network_failure_in_json_mode_ends_with_an_error_line() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = rx_allm(
        "chat", "hi", "--json", "--provider", "openai", "--base-url", url, OPENAI_API_KEY=DUMMY_KEY
    )

    assert result.returncode == 1
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["type"] == "error"
    assert (last["error"]["type"], last["error"]["reason"]) == ("AdapterError", "network_error")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--provider", "openai"), "authentication_failed"),  # no key anywhere
        (("--provider", "fake", "--temperature", "5"), "invalid_request"),
    ],
)
def test_a_refused_call_exits_2_with_its_reason(args: tuple[str, ...], reason: str) -> None:
    result = rx_allm("chat", "hi", *args)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith(f"rx-allm: error: {reason} ")


@pytest.mark.asyncio
async def test_an_http_error_status_is_reported_with_its_reason(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(status=429, headers={"Retry-After": "3"}))
    base_url = emulator.base_url("openai")
    async with running(
        "chat", "hi", "--provider", "openai", "--base-url", base_url, OPENAI_API_KEY=DUMMY_KEY
    ) as proc:
        _, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT)

    assert proc.returncode == 1
    assert "rx-allm: error: rate_limited (AdapterError, openai, HTTP 429):" in stderr.decode()
    assert DUMMY_KEY not in stderr.decode()
    assert emulator.posts() == 1  # no retry
    assert emulator.requests[0].headers["authorization"] == f"Bearer {DUMMY_KEY}"


# -- Ctrl-C -----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_ctrl_c_cancels_the_request_and_exits_130(emulator: ProviderEmulator) -> None:
    emulator.default = Reply(text=" ".join(f"w{i}" for i in range(400)), chunk_delay=0.05)  # ~20 s
    base_url = emulator.base_url("openai")
    async with running(
        "chat", "hi", "--provider", "openai", "--base-url", base_url, OPENAI_API_KEY=DUMMY_KEY
    ) as proc:
        assert proc.stdout is not None
        first = b""
        async with asyncio.timeout(TIMEOUT):
            while len(first) < 5:  # streaming has begun
                first += await proc.stdout.read(5)
        assert first.startswith(b"w0 w1")

        proc.send_signal(signal.SIGINT)
        rest, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT)

    assert proc.returncode == 130
    assert stderr.decode().strip().endswith("cancelled")
    await emulator.wait_for_disconnects(1, timeout=TIMEOUT)
    assert [d.request_index for d in emulator.disconnects] == [0]
    assert emulator.completed == [] and emulator.posts() == 1
    assert len((first + rest).split()) < 400


# -- serve --------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_serve_runs_the_chat_app_until_ctrl_c() -> None:
    async with running("serve", "--port", "0") as proc:
        assert proc.stderr is not None
        lines: list[str] = []
        async with asyncio.timeout(TIMEOUT):
            while not (lines and lines[-1].startswith("rx-allm chat: open ")):
                line = await proc.stderr.readline()
                assert line, f"serve exited early: {lines}"
                lines.append(line.decode())
        assert lines[0].startswith(NOTICE)
        match = re.search(r"open (http://127\.0\.0\.1:\d+/) ", lines[-1])
        assert match, lines
        url = match.group(1)

        body = {
            "id": "c1",
            "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Bonjour"}]}],
        }
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as page:
                assert page.status == 200 and '<div id="root">' in await page.text()
            async with session.post(url + "api/chat", json=body) as response:
                assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
                raw = await asyncio.wait_for(response.read(), TIMEOUT)

        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), TIMEOUT)

    assert proc.returncode == 130  # stopped by Ctrl-C, like chat
    events = [event.data for event in SSEDecoder().feed(raw)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert text.startswith("You asked: “Bonjour”.")  # the emulator answers the prompt it received
    assert chunks[-1]["type"] == "finish"
