"""Serving the chat app: on a running loop (tests, embedding) or until Ctrl-C.

With ``redis`` (a Redis URL), replies run in a :class:`~rx_allm.relay.RedisRelay` and the
chats are kept in Redis, so any number of processes (``reuse_port``: on one port) serve
one app: a refresh on any of them resumes a reply, Stop from any of them stops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from rx_allm.engine import Engine
from rx_allm.ui.app import LINGER, make_chat_app
from rx_allm.ui.rooms import RedisRoomStore, Rooms, memory_relay
from rx_allm.ui.serving import serve_app, start_app, url_of


def chat_rooms(redis: str | None = None) -> Rooms:
    """In this process (``redis`` None), or shared through the Redis at ``redis``."""
    if redis is None:
        return Rooms(memory_relay(LINGER))
    from rx_allm.relay import RedisRelay

    relay = RedisRelay(redis, idle_timeout=LINGER)
    return Rooms(relay, RedisRoomStore(relay.client, relay.prefix, relay.options.ttl))


async def start(
    engine: Engine,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tools: Sequence[Any] = (),
    redis: str | None = None,
    reuse_port: bool = False,
) -> web.AppRunner:
    """Serve the chat app on the running loop (``port=0``: any free port); ``runner.cleanup()`` stops it."""
    app = make_chat_app(engine, tools=tools, rooms=chat_rooms(redis))
    return await start_app(app, host, port, reuse_port=reuse_port)


def serve(
    engine: Engine,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    tools: Sequence[Any] = (),
    redis: str | None = None,
    reuse_port: bool = False,
) -> int:
    """Run the chat app until Ctrl-C (the replies this process runs are cancelled); returns 130."""
    return serve_app(
        lambda: make_chat_app(engine, tools=tools, rooms=chat_rooms(redis)),
        host,
        port,
        "chat",
        reuse_port=reuse_port,
    )


__all__ = ["chat_rooms", "serve", "start", "url_of"]
