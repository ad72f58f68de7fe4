"""Serving the chat app: on a running loop (tests, embedding) or until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from rx_allm.engine import Engine
from rx_allm.ui.app import make_chat_app


async def start(
    engine: Engine, host: str = "127.0.0.1", port: int = 0, *, tools: Sequence[Any] = ()
) -> web.AppRunner:
    """Serve the chat app on the running loop (``port=0``: any free port); ``runner.cleanup()`` stops it.

    Handlers are cancelled as soon as their client disconnects: that is what cancels a
    closed tab's provider request.
    """
    app = make_chat_app(engine, tools=tools)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def url_of(runner: web.AppRunner) -> str:
    """The page's address on the first listening socket of ``runner``."""
    host, port = runner.addresses[0][:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 8080, *, tools: Sequence[Any] = ()) -> int:
    """Run the chat app until Ctrl-C (running generations are cancelled); returns 0."""

    async def run() -> None:
        runner = await start(engine, host, port, tools=tools)
        try:
            print(f"rx-allm chat: open {url_of(runner)} (Ctrl-C stops)", file=sys.stderr, flush=True)
            await asyncio.get_running_loop().create_future()  # until Ctrl-C cancels it
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0
