"""The library's own ``aiohttp.ClientSession``: one per event loop, reused, closed cleanly.

A session is created on first use in a loop. It is closed when the loop shuts
down its async generators (``asyncio.run``, ``asyncio.Runner``, pytest-asyncio
all do), when :func:`close_session` is awaited, or at interpreter exit for the
background loop. A ``session`` passed in ``adapter_opts`` is used as is and
never closed by the library.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from rx_allm._loop import on_background_shutdown

if TYPE_CHECKING:  # aiohttp is imported on first use: ``import rx_allm`` stays light
    import aiohttp

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)


async def session_for_loop() -> aiohttp.ClientSession:
    """The running loop's library session (created on first use)."""
    import aiohttp

    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, enable_cleanup_closed=False),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
        )
        _sessions[loop] = session
        closer = _close_at_shutdown(session)
        await closer.__anext__()  # registered with the loop's async-generator hooks
        _closers[loop] = closer
    return session


async def _close_at_shutdown(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await session.close()


async def close_session() -> None:
    """Close the running loop's library session now (a new one is made on next use)."""
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    closer = _closers.pop(loop, None)
    if session is not None:
        await session.close()
    if closer is not None:
        await closer.aclose()


on_background_shutdown(close_session)


__all__ = ["close_session", "session_for_loop"]
