"""The pytest fixtures shared by the test modules (helpers live in ``helpers.py``).

* ``emulator`` — a :class:`~rx_allm.testing.emulator.ProviderEmulator` listening on
  127.0.0.1 for the duration of one async test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from rx_allm.testing.emulator import ProviderEmulator


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[ProviderEmulator]:
    """A started emulator (stopped after the test)."""
    async with ProviderEmulator() as emu:
        yield emu
