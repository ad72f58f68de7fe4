"""Blocking entries refuse to block the loop a stream needs, with ``BlockingCallError``.

``events.run()``, ``generate_sync``, ``chat_sync`` and ``record_sync`` called inside
``on_next`` of a synchronous stream run on the library's background loop thread: waiting
there for another HTTP stream — which needs that very loop — would deadlock every
synchronous stream of the process. The same call inside a coroutine would block the
caller's loop. Each refuses at once; the outer stream goes on. Every wait is bounded, so
a deadlock fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reactivex import operators as ops

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import record_sync

WAIT = 20.0


@pytest.fixture
def emu() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(default=Reply(text="one two three")).running() as emulator:
        yield emulator


def engine(emulator: ProviderEmulator) -> allm.Engine:
    return allm.Engine(
        adapter="openai",
        model="gpt-4o-mini",
        adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "sk-blocking-0123456789"},
    )


def req() -> allm.Request:
    return allm.request([allm.user("hi")])


def blocking_calls(emulator: ProviderEmulator) -> dict[str, Callable[[], Any]]:
    return {
        "run": lambda: allm.stream_generate(engine(emulator), req()).pipe(ops.to_list()).run(),
        "generate_sync": lambda: allm.generate_sync(engine(emulator), req()),
        "chat_sync": lambda: allm.chat_sync(engine(emulator), "hi"),
        "record_sync": lambda: record_sync(allm.stream_generate(engine(emulator), req())),
    }


@pytest.mark.parametrize("name", ["run", "generate_sync", "chat_sync", "record_sync"])
def test_a_blocking_call_inside_on_next_on_the_background_loop_refuses(
    emu: ProviderEmulator, name: str
) -> None:
    call = blocking_calls(emu)[name]
    outcomes: list[Any] = []
    where: list[str] = []

    def on_next(event: allm.Event) -> None:
        if isinstance(event, allm.MessageStarted):
            where.append(threading.current_thread().name)
            try:
                outcomes.append(call())
            except Exception as exc:
                outcomes.append(exc)

    def outer() -> None:
        outcomes.append(
            allm.stream_generate(engine(emu), req()).pipe(ops.do_action(on_next), ops.to_list()).run()
        )

    thread = threading.Thread(target=outer, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "deadlocked"
    assert where == ["rx_allm-loop"]
    refused, events = outcomes
    assert isinstance(refused, allm.BlockingCallError), refused
    assert isinstance(refused, RuntimeError)
    assert "rx_allm-loop" in str(refused) or "event loop" in str(refused)
    assert events[-1].type == "message_completed"
    # the background loop is still serving synchronous streams
    assert allm.generate_sync(engine(emu), req()).output_text == "one two three"


@pytest.mark.parametrize("name", ["run", "generate_sync", "chat_sync", "record_sync"])
def test_a_blocking_call_inside_a_coroutine_refuses(emu: ProviderEmulator, name: str) -> None:
    call = blocking_calls(emu)[name]

    async def main() -> Any:
        try:
            return call()
        except Exception as exc:
            return exc

    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(main())), daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "deadlocked"
    assert isinstance(outcome[0], allm.BlockingCallError), outcome


def test_run_from_plain_code_still_works(emu: ProviderEmulator) -> None:
    events = allm.stream_generate(engine(emu), req()).pipe(ops.to_list()).run()
    assert events[-1].type == "message_completed"
