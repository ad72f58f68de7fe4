"""Serving an aiohttp app of rx_allm: start it on a loop (tests, embedding) or run it until Ctrl-C.

:func:`start_app` / :func:`serve_app` serve any aiohttp application the way a reactive
UI back end needs (handlers cancelled when their client disconnects); :func:`run_processes`
runs worker processes (``rx-allm serve --workers``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web


async def start_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False
) -> web.AppRunner:
    """Serve ``app`` on the running loop (``port=0``: any free port); ``await runner.cleanup()`` stops it.

    Handlers are cancelled as soon as their client disconnects, which is what disposes a
    closed tab's subscription. ``reuse_port`` lets several processes listen on one port
    (the kernel spreads the connections).
    """
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def url_of(runner: web.AppRunner) -> str:
    """The page's address on the first listening socket of ``runner`` (this machine's loopback
    address when it listens on all of them: ``0.0.0.0`` is no address to open)."""
    host, port = runner.addresses[0][:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve_app(
    make: Callable[[], web.Application], host: str, port: int, name: str, *, reuse_port: bool = False
) -> int:
    """Run the app ``make()`` builds until Ctrl-C, announcing ``rx-allm <name>: open <url>``; returns 130
    (stopped by Ctrl-C, like ``rx-allm chat``)."""

    async def run() -> None:
        runner = await start_app(make(), host, port, reuse_port=reuse_port)
        try:
            announce = f"rx-allm {name}: open {url_of(runner)} (Ctrl-C stops)\n"
            print(announce, end="", file=sys.stderr, flush=True)  # one write: workers share stderr
            await asyncio.get_running_loop().create_future()  # until Ctrl-C cancels it
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    return 0


def run_processes(target: Callable[..., object], argsets: Sequence[tuple[Any, ...]]) -> int:
    """Run ``target(*args)`` in one spawned process per tuple until they end; Ctrl-C or SIGTERM
    here stops them all (SIGTERM each, then kill after 5 s). Returns 0."""
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_quit_on_sigterm, args=(target, args), daemon=True) for args in argsets]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    return 0


def _quit_on_sigterm(target: Callable[..., object], args: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a clean exit: the app's shutdown runs
    target(*args)


__all__ = ["run_processes", "serve_app", "start_app", "url_of"]
