"""Serving the chat app: on a running loop (tests, embedding) or until Ctrl-C."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from rx_allm.demo.server import serve_app, start_app, url_of
from rx_allm.engine import Engine
from rx_allm.ui.app import make_chat_app


async def start(
    engine: Engine, host: str = "127.0.0.1", port: int = 0, *, tools: Sequence[Any] = ()
) -> web.AppRunner:
    """Serve the chat app on the running loop (``port=0``: any free port); ``runner.cleanup()`` stops it."""
    return await start_app(make_chat_app(engine, tools=tools), host, port)


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 8080, *, tools: Sequence[Any] = ()) -> int:
    """Run the chat app until Ctrl-C (running generations are cancelled); returns 0."""
    return serve_app(lambda: make_chat_app(engine, tools=tools), host, port, "chat")


__all__ = ["serve", "start", "url_of"]
