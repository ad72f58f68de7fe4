"""Tenants in one process: no cookie crosses engines, and the library's pool has a cap.

Two engines with different keys (two tenants) share the library's session of a loop. A
provider (or a proxy in front of it) answering with ``Set-Cookie`` must not have that cookie
sent with the other tenant's requests — nor with any later request: the library keeps no
cookie jar. The emulator is reached through ``localhost`` (a host name: aiohttp's default
jar ignores cookies from bare IP addresses, which would hide the defect).
"""

from __future__ import annotations

import pytest

import rx_allm as allm
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
