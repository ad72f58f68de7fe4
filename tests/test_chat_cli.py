"""``rx-allm chat --tools demo`` and ``--interactive``, run as a subprocess with no provider key."""

from __future__ import annotations

import json

import pytest
from test_cli import rx_allm

from rx_allm.cli import arithmetic_in
from rx_allm.orchestration.demo_tools import DEMO_TOOLS, calculator, clock, demo_scripts


def test_tools_demo_runs_a_tool_loop_with_no_key() -> None:
    done = rx_allm("chat", "--tools", "demo", "what is (12 + 30) * 2?")
    assert done.returncode == 0, done.stderr
    assert '[tool calculator(expression="(12 + 30) * 2") -> 84]' in done.stdout
    assert "The tool answered 84." in done.stdout
    assert "built-in provider emulator" in done.stderr


def test_tools_demo_with_the_fake_provider() -> None:
    done = rx_allm("chat", "--provider", "fake", "--tools", "demo", "3*3")
    assert done.returncode == 0, done.stderr
    assert '[tool calculator(expression="3*3") -> 9]' in done.stdout and "3*3 = 9" in done.stdout


def test_interactive_keeps_the_thread_between_turns() -> None:
    done = rx_allm("chat", "-i", "--tools", "demo", "--json", stdin="what is 1+1?\nand 2*3?\n/exit\n")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    finals = [e["result"] for e in events if e["type"] == "chat_completed"]
    assert len(finals) == 2 and all(r["halted_reason"] == "completed" for r in finals)
    thread = finals[1]["thread"]["messages"]
    assert [m["role"] for m in thread] == ["user", "assistant", "tool", "assistant"] * 2
    assert [m["content"] for m in thread if m["role"] == "tool"] == ["2", "6"]


def test_interactive_ends_at_end_of_input_and_chat_needs_a_prompt() -> None:
    done = rx_allm("chat", "--interactive", stdin="hello\n")
    assert done.returncode == 0 and "You asked: “hello”" in done.stdout
    refused = rx_allm("chat")
    assert refused.returncode == 2 and "a prompt is needed" in refused.stderr


def test_demo_tools() -> None:
    assert [t.name for t in DEMO_TOOLS] == ["clock", "calculator"]
    assert calculator("2 ** 10 - (3 + 4) * 2") == 1010 and calculator("-7 // 2") == -4
    for bad in ("__import__('os')", "2 ** 1000", "x + 1", "1" * 300):
        with pytest.raises(ValueError):
            calculator(bad)
    assert clock(utc_offset_hours=2).endswith("+02:00")
    assert demo_scripts("6 * 7")[1][-2] == ("text", "42")
    assert arithmetic_in("what is (12 + 30) * 2?") == "(12 + 30) * 2" and arithmetic_in("hello 42") is None
