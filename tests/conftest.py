"""The pytest fixtures shared by the test modules (helpers live in ``helpers.py``).

* ``emulator`` — a :class:`~rx_allm.testing.emulator.ProviderEmulator` listening on
  127.0.0.1 for the duration of one async test.
* ``redis_server`` — a real ``redis-server`` (:class:`~rx_allm.testing.redis_server.RedisServer`)
  on a free loopback port, persistence off, for one test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from rx_allm.testing.emulator import ProviderEmulator
from rx_allm.testing.redis_server import RedisServer


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[ProviderEmulator]:
    """A started emulator (stopped after the test)."""
    async with ProviderEmulator() as emu:
        yield emu


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free loopback port, persistence off (stopped after the test)."""
    with RedisServer() as server:
        yield server
