"""The library's own ``aiohttp.ClientSession``: one per event loop, reused, closed cleanly.

A session is created on first use in a loop. It is closed when the loop shuts
down its async generators (``asyncio.run``, ``asyncio.Runner``, pytest-asyncio
all do), when :func:`close_session` is awaited, or at interpreter exit for the
background loop. A ``session`` passed in ``adapter_opts`` is used as is and
never closed by the library.

The session keeps no cookies (``DummyCookieJar``): it is shared by every engine of the loop
— several tenants, several keys — so a cookie one provider response set would otherwise be
sent with another tenant's requests. Its connector caps the open connections at
:data:`MAX_CONNECTIONS` (more streams wait for a free connection, within their
``request_timeout``). A forked child never uses a session of its parent: it gets its own.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from rx_allm._loop import on_background_shutdown

if TYPE_CHECKING:  # aiohttp is imported on first use: ``import rx_allm`` stays light
    import aiohttp


def _connection_cap() -> int:
    try:
        import resource
    except ImportError:  # Windows: no descriptor limit to share
        return 1024
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1024 if soft == resource.RLIM_INFINITY else min(1024, max(16, soft // 2))


#: The cap on the library session's open connections per event loop: 1,024, or half the
#: process's file-descriptor limit if that is lower, so a burst of streams waits for a
#: connection instead of exhausting the descriptors every file and socket needs.
MAX_CONNECTIONS = _connection_cap()

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
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, enable_cleanup_closed=False),
            cookie_jar=aiohttp.DummyCookieJar(),
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


_inherited: list[object] = []  # in a forked child: the parent's sessions, never closed nor collected


def _forget_parent_sessions() -> None:
    _inherited.extend([dict(_sessions), dict(_closers)])
    _sessions.clear()
    _closers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_sessions)


__all__ = ["close_session", "session_for_loop"]
