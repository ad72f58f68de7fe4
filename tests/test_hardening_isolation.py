"""Tenants in one process: no cookie crosses engines, and the library's pool has a cap.

Two engines with different keys (two tenants) share the library's session of a loop. A
provider (or a proxy in front of it) answering with ``Set-Cookie`` must not have that cookie
sent with the other tenant's requests — nor with any later request: the library keeps no
cookie jar. The emulator is reached through ``localhost`` (a host name: aiohttp's default
jar ignores cookies from bare IP addresses, which would hide the defect). The pool's cap makes
streams beyond it wait for a free connection rather than fail.
"""

from __future__ import annotations

import asyncio

import pytest

import rx_allm as allm
from rx_allm import _connections
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import record


def tenant(emulator: ProviderEmulator, key: str) -> allm.Engine:
    url = emulator.base_url("openai").replace("127.0.0.1", "localhost")
    return allm.Engine(adapter="openai", model="gpt-4o-mini", adapter_opts={"base_url": url, "api_key": key})


@pytest.mark.asyncio
async def test_a_set_cookie_is_never_sent_back() -> None:
    cookie = {"Set-Cookie": "session=tenant-a-secret; Path=/; Max-Age=3600"}
    async with ProviderEmulator(default=Reply(text="ok", headers=cookie)) as emulator:
        a = tenant(emulator, "sk-tenant-a-0123456789")
        b = tenant(emulator, "sk-tenant-b-0123456789")
        for engine in (a, b, a):
            rec = await record(allm.stream_generate(engine, allm.request([allm.user("hi")])))
            assert rec.completed, rec.error
        assert [r.headers["authorization"][-12:] for r in emulator.requests] == [
            "a-0123456789",
            "b-0123456789",
            "a-0123456789",
        ]
        assert all("cookie" not in r.headers for r in emulator.requests), [
            r.headers for r in emulator.requests
        ]


@pytest.mark.asyncio
async def test_the_pool_is_capped_and_streams_beyond_the_cap_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert 16 <= _connections.MAX_CONNECTIONS <= 1024
    await _connections.close_session()  # a new session for this loop, with a cap of 2
    monkeypatch.setattr(_connections, "MAX_CONNECTIONS", 2)
    async with ProviderEmulator(default=Reply(text="one two three", chunk_delay=0.01)) as emulator:
        engine = tenant(emulator, "sk-tenant-a-0123456789")
        session = await _connections.session_for_loop()
        assert session.connector is not None and session.connector.limit == 2
        recordings = await asyncio.gather(
            *(record(allm.stream_generate(engine, allm.request([allm.user("hi")])), 20.0) for _ in range(6))
        )
        assert all(rec.completed for rec in recordings), [rec.error for rec in recordings]
        assert emulator.posts() == 6
    await _connections.close_session()
