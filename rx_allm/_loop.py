"""Which event loop a subscription runs on.

Subscribed from a thread with a running asyncio loop, work runs on that loop
and events are delivered there. Subscribed from plain synchronous code (a
script, a notebook cell, another thread), work runs on one library-managed
background loop in a daemon thread, started on first use and stopped at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from reactivex.abc import DisposableBase, SchedulerBase
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

_lock = threading.Lock()
_background: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_shutdown_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = []


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def background_loop() -> asyncio.AbstractEventLoop:
    """The library's background loop (started on first use)."""
    global _background, _thread
    loop = _background
    if loop is not None and not loop.is_closed():
        return loop
    with _lock:
        if _background is None or _background.is_closed():
            _background = asyncio.new_event_loop()
            ready = threading.Event()
            _thread = threading.Thread(
                target=_run_background, args=(_background, ready), name="rx_allm-loop", daemon=True
            )
            _thread.start()
            ready.wait()
        return _background


def _run_background(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


def loop_for_subscription() -> asyncio.AbstractEventLoop:
    """The running loop of this thread if any, else the background loop."""
    return running_loop() or background_loop()


def default_scheduler() -> SchedulerBase:
    """A scheduler for timed work when the subscriber gave none."""
    loop = running_loop()
    if loop is not None:
        return AsyncIOScheduler(loop)
    return AsyncIOThreadSafeScheduler(background_loop())


def on_background_shutdown(hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Register a coroutine function run on the background loop before it stops at exit."""
    _shutdown_hooks.append(hook)


def call_on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    """Run ``fn`` on ``loop``: now if this thread runs it, else soon (thread-safe)."""
    if running_loop() is loop:
        fn()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(fn)


def block_until(finished: threading.Event, subscription: DisposableBase) -> None:
    """Block until ``finished`` is set; an exception meanwhile (Ctrl-C) disposes ``subscription``."""
    try:
        while not finished.wait(0.1):
            pass
    except BaseException:
        subscription.dispose()
        raise


@atexit.register
def _stop_background() -> None:
    loop, thread = _background, _thread
    if loop is None or loop.is_closed() or thread is None:
        return

    async def shutdown() -> None:
        for hook in _shutdown_hooks:
            await hook()

    with contextlib.suppress(Exception):  # best effort at interpreter exit
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


__all__ = [
    "background_loop",
    "block_until",
    "call_on_loop",
    "default_scheduler",
    "loop_for_subscription",
    "on_background_shutdown",
    "running_loop",
]
