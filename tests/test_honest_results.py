"""Honest results: a Response is ok only after ``message_completed``; fan-out over HTTP; sync iteration.

An unfinished fold (nothing folded, a stream cut by ``take_until``) says so
(``status == "unfinished"``); the README's fan-out recipe reads the whole reply from an HTTP
adapter; ``allm.iterate_sync`` gives a plain ``for`` loop whose ``break`` disposes.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply

README = Path(__file__).parent.parent / "README.md"
KEY = "sk-honest-results-0123456789"


def test_an_empty_fold_is_unfinished_not_ok() -> None:
    response = allm.StreamCollector().to_response()
    assert not response.ok
    assert response.status == "unfinished" and response.error is None


def test_a_completed_fold_is_ok() -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", "hi"), ("finish", "stop")]})
    response = allm.generate_sync(engine, allm.request([allm.user("x")]))
    assert response.ok and response.status == "completed"


def test_a_stream_cut_by_take_until_is_not_ok() -> None:
    script = [("text", "partial"), ("delay", 10), ("text", "never"), ("finish", "stop")]
    engine = allm.Engine(adapter="fake", adapter_opts={"script": script})
    collector = allm.StreamCollector()
    scheduler = reactivex.testing.TestScheduler()
    stop = reactivex.timer(1.0, scheduler=scheduler)
    events = allm.stream_generate(engine, allm.request([allm.user("x")])).pipe(ops.take_until(stop))
    events.subscribe(on_next=collector.apply, on_error=collector.fail, scheduler=scheduler)
    scheduler.start()
    response = collector.to_response()
    assert response.output_text == "partial"
    assert not response.ok and response.status == "unfinished"


def test_a_failed_fold_has_status_error() -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", "a"), ("error", "rate_limited")]})
    response = allm.generate_sync(engine, allm.request([allm.user("x")]))
    assert not response.ok and response.status == "error"


def _fan_out_recipe() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Fan-out", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match
    return match.group(1)


@pytest.mark.asyncio
async def test_readme_fan_out_recipe_over_http(emulator: ProviderEmulator) -> None:
    emulator.default = Reply(text="Hello over HTTP.", chunk_delay=0.01)
    engine = allm.Engine(
        adapter="openai",
        adapter_opts={"base_url": emulator.base_url("openai"), "api_key": KEY},
        model="gpt-4o-mini",
    )
    namespace: dict[str, Any] = {}
    exec(compile(_fan_out_recipe(), "README fan-out", "exec"), namespace)
    fan_out = namespace["fan_out"]
    out = io.StringIO()

    def run() -> allm.Response:
        with contextlib.redirect_stdout(out):
            return fan_out(engine)  # type: ignore[no-any-return]

    import asyncio

    response = await asyncio.to_thread(run)
    assert response.ok and response.output_text == "Hello over HTTP."
    assert "log: Hello over HTTP. completed" in out.getvalue()
    assert "ui: Hello" in out.getvalue()
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_iterate_sync_break_disposes(emulator: ProviderEmulator) -> None:
    emulator.default = Reply(text="one two three four", stall_after=3)
    engine = allm.Engine(
        adapter="openai",
        adapter_opts={"base_url": emulator.base_url("openai"), "api_key": KEY},
        model="gpt-4o-mini",
    )

    def consume() -> list[str]:
        seen: list[str] = []
        for event in allm.iterate_sync(allm.stream_generate(engine, allm.request([allm.user("x")]))):
            seen.append(event.type)
            if event.type == "text_delta":
                break
        return seen

    import asyncio

    seen = await asyncio.to_thread(consume)
    assert seen[-1] == "text_delta"
    await emulator.wait_for_disconnects(1, timeout=5.0)


def test_iterate_sync_raises_the_terminal_error() -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", "a"), ("error", "rate_limited")]})
    seen: list[str] = []
    with pytest.raises(allm.AdapterError) as info:
        for event in allm.iterate_sync(allm.stream_generate(engine, allm.request([allm.user("x")]))):
            seen.append(event.type)
    assert info.value.reason == "rate_limited" and "text_delta" in seen


def test_an_unfinished_fold_keeps_reasoning_and_refusal() -> None:
    script = [
        ("reasoning", "Think first."),
        ("text", "partial"),
        ("refusal", "No."),
        ("delay", 10),
        ("finish", "stop"),
    ]
    engine = allm.Engine(adapter="fake", adapter_opts={"script": script})
    collector = allm.StreamCollector()
    scheduler = reactivex.testing.TestScheduler()
    events = allm.stream_generate(engine, allm.request([allm.user("x")]), include_raw_chunks=True)
    events.pipe(ops.take_until(reactivex.timer(1.0, scheduler=scheduler))).subscribe(
        on_next=collector.apply, scheduler=scheduler
    )
    scheduler.start()
    response = collector.to_response()
    assert response.status == "unfinished"
    assert [r.text for r in response.reasoning] == ["Think first."]
    assert (response.output_text, response.refusal) == ("partial", "No.")


def test_reasoning_is_a_top_level_name() -> None:
    assert allm.Reasoning is allm.models.Reasoning
