"""Shared test helpers: a provider emulator per test, the wire fixture bodies, a recorder.

* ``emulator`` — a :class:`~rx_allm.testing.emulator.ProviderEmulator` listening on
  127.0.0.1 for the duration of one async test.
* ``fixture_bytes(name)`` — ``tests/fixtures/wire/<name>`` byte for byte (``.sse`` is
  added when missing).
* ``record(observable)`` — subscribe on the running loop and wait (bounded) for the
  terminal notification; the :class:`Recording` keeps every notification in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio
from reactivex import Observable

from rx_allm.testing.emulator import ProviderEmulator

WIRE_FIXTURES = Path(__file__).parent / "fixtures" / "wire"


def fixture_bytes(name: str) -> bytes:
    """The raw bytes of a wire fixture (``"openai_text"`` or ``"openai_text.sse"``)."""
    path = WIRE_FIXTURES / (name if name.endswith(".sse") else f"{name}.sse")
    return path.read_bytes()


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[ProviderEmulator]:
    """A started emulator (stopped after the test)."""
    async with ProviderEmulator() as emu:
        yield emu


@dataclass
class Recording:
    """What one subscription saw: ``items`` (on_next values) and how it ended."""

    items: list[Any] = field(default_factory=list)
    error: Exception | None = None
    completed: bool = False
    after_terminal: list[Any] = field(default_factory=list)  # anything delivered after the end

    @property
    def ended(self) -> bool:
        return self.completed or self.error is not None


async def record(source: Observable[Any], timeout: float = 5.0) -> Recording:
    """Subscribe to ``source`` and wait up to ``timeout`` seconds for its terminal notification."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    rec = Recording()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def on_next(item: Any) -> None:
        (rec.after_terminal if rec.ended else rec.items).append(item)

    def on_error(error: Exception) -> None:
        if rec.ended:
            rec.after_terminal.append(error)
        rec.error = rec.error or error
        finish()

    def on_completed() -> None:
        if rec.ended:
            rec.after_terminal.append("completed")
        rec.completed = True
        finish()

    subscription = source.subscribe(on_next=on_next, on_error=on_error, on_completed=on_completed)
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        subscription.dispose()
    return rec
