"""The ``rx-allm`` command tried as a new user would (subprocesses, bounded, clean environment).

``--base-url`` alone means an OpenAI-compatible server; ``--api-key``, ``--timeout``,
``--endpoint``, ``--version`` and a prompt from stdin work; every option has help text;
errors are one line with one prefix (retry-after and request id included), with no blank
stdout line before them and compact JSON in ``--json`` mode; ``serve`` reports a busy
port in one line and exits 130 on Ctrl-C like ``chat``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
import socket

import pytest
from test_cli import DUMMY_KEY, NOTICE, TIMEOUT, closed_port, running, rx_allm

import rx_allm as allm
from rx_allm import cli
from rx_allm.testing import ProviderEmulator, Reply


def last_user_text(emulator: ProviderEmulator) -> str:
    return str(emulator.requests[-1].json["messages"][-1]["content"])


def test_version() -> None:
    result = rx_allm("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"rx-allm {allm.__version__}"


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    found: list[argparse.Action] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _options(sub)
        elif not isinstance(action, argparse._HelpAction):
            found.append(action)
    return found


def test_every_option_has_help_text() -> None:
    missing = [a.dest for a in _options(cli._parser()) if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


@pytest.mark.asyncio
async def test_base_url_alone_means_an_openai_compatible_server(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="compatible"))
    async with running("chat", "hi", "--base-url", emulator.base_url("openai")) as proc:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, stderr
    assert stdout.decode() == "compatible\n"
    assert NOTICE not in stderr.decode()
    assert emulator.posts("/chat/completions") == 1


def test_base_url_of_a_remote_server_without_key_is_refused() -> None:
    result = rx_allm("chat", "hi", "--base-url", "https://llm.example.com/v1")
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rx-allm: error: ") and "--api-key" in line


@pytest.mark.asyncio
async def test_api_key_endpoint_and_timeout_options(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="via responses"))
    base = emulator.base_url("openai")
    args = ("chat", "hi", "--provider", "openai", "--base-url", base, "--api-key", DUMMY_KEY)
    async with running(*args, "--endpoint", "responses", "--timeout", "5") as proc:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, stderr
    assert stdout.decode() == "via responses\n"
    sent = emulator.requests[0]
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == f"Bearer {DUMMY_KEY}"
    assert DUMMY_KEY not in stderr.decode()


@pytest.mark.asyncio
async def test_timeout_ends_a_stalled_stream(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="a b c", stall_after=2))
    base = emulator.base_url("openai")
    async with running("chat", "hi", "--base-url", base, "--timeout", "0.3") as proc:
        _, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 1
    assert "rx-allm: error: timeout" in stderr.decode()


@pytest.mark.asyncio
@pytest.mark.parametrize("args", [("-",), ()])
async def test_prompt_from_stdin(emulator: ProviderEmulator, args: tuple[str, ...]) -> None:
    emulator.enqueue(Reply(text="ok"))
    command = ("chat", *args, "--base-url", emulator.base_url("openai"))
    result = await asyncio.to_thread(functools.partial(rx_allm, *command, stdin="from stdin\n"))
    assert result.returncode == 0, result.stderr
    assert last_user_text(emulator) == "from stdin"


@pytest.mark.asyncio
async def test_error_line_has_retry_after_and_request_id(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(status=429, headers={"Retry-After": "3", "x-request-id": "req_abc123"}))
    async with running("chat", "hi", "--base-url", emulator.base_url("openai")) as proc:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 1
    assert stdout == b""  # no blank line before the error
    (line,) = stderr.decode().strip().splitlines()
    assert line.startswith("rx-allm: error: rate_limited")
    assert "retry after 3s" in line and "request id req_abc123" in line


def test_json_error_line_is_compact() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = rx_allm("chat", "hi", "--json", "--base-url", url, "--api-key", DUMMY_KEY)
    last = result.stdout.splitlines()[-1]
    assert last.startswith('{"type":"error","error":{') and ": " not in last.split('"message"')[0]
    assert json.loads(last)["error"]["reason"] == "network_error"


def test_fake_provider_reply_has_no_key_hint() -> None:
    result = rx_allm("chat", "hi", "--provider", "fake")
    assert result.returncode == 0
    assert "OPENAI_API_KEY" not in result.stdout


def test_emulator_usage_is_computed_from_its_text() -> None:
    result = rx_allm("chat", "Say hello in French", "--json")
    events = [allm.parse_event(json.loads(line)) for line in result.stdout.splitlines()]
    words = len(events[-1].message.text.split())
    (usage,) = [e.data for e in events if isinstance(e, allm.RawChunk) and e.kind == "usage"]
    assert usage.output_tokens >= words > 20
    assert usage.input_tokens >= 4


def test_serve_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = rx_allm("serve", "--provider", "fake", "--port", str(port))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("rx-allm: error:")]
    assert len(errors) == 1 and str(port) in errors[0]


@pytest.mark.asyncio
async def test_serve_shows_a_reachable_url_and_exits_130_on_ctrl_c() -> None:
    async with running("serve", "--provider", "fake", "--host", "0.0.0.0", "--port", "0") as proc:
        assert proc.stderr is not None
        lines: list[str] = []
        async with asyncio.timeout(TIMEOUT):
            while not any("open http" in line for line in lines):
                line = await proc.stderr.readline()
                assert line, f"serve exited early: {lines}"
                lines.append(line.decode())
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 130
    assert "0.0.0.0" not in lines[-1] and "http://127.0.0.1:" in lines[-1]
