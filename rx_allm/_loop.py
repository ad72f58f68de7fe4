"""Which event loop a subscription runs on.

Subscribed from a thread with a running asyncio loop, work runs on that loop
and events are delivered there. Subscribed from plain synchronous code (a
script, a notebook cell, another thread), work runs on one library-managed
background loop in a daemon thread, started on first use and stopped at exit.

A forked child process (``os.fork``, multiprocessing's ``fork``, gunicorn ``--preload``,
Celery prefork) starts with no background loop: the parent's loop thread does not exist
there, and its loop, selector and connections are shared with the parent, so the child
never touches them (they are kept referenced, never closed or collected, so no cleanup
acts on the parent's file descriptors) and starts its own loop on first use.

Blocking calls (``events.run()``, ``generate_sync``) refuse with
:class:`~rx_allm.errors.BlockingCallError` on a thread that runs an event loop: waiting
there for a stream that needs that loop would deadlock.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from reactivex.abc import DisposableBase, SchedulerBase
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

from rx_allm.errors import BlockingCallError

_lock = threading.Lock()
_background: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_shutdown_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = []
_inherited: list[object] = []  # in a forked child: the parent's loop objects, never touched
# ``Observable.run()`` subscribes with this scheduler (reactivex's default for ``run``).
_RUN_SCHEDULER = getattr(importlib.import_module("reactivex.run"), "_default_scheduler", None)


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


def refuse_blocking(what: str) -> None:
    """Raise :class:`BlockingCallError` if this thread runs an event loop (``what`` would block it)."""
    loop = running_loop()
    if loop is None:
        return
    where = (
        "the rx_allm-loop thread (a callback of a synchronous stream), which every synchronous stream needs"
        if loop is _background
        else "this thread's running event loop, which the stream needs"
    )
    raise BlockingCallError(f"{what} would block {where}; subscribe without blocking, or await instead")


def refuse_blocking_run(scheduler: SchedulerBase | None) -> None:
    """Refuse an ``Observable.run()`` (recognised by its scheduler) on a thread that runs a loop."""
    if scheduler is not None and scheduler is _RUN_SCHEDULER:
        refuse_blocking("events.run()")


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


def _forget_parent_loop() -> None:
    """In a forked child: the parent's loop thread is gone; start afresh (see the module doc)."""
    global _lock, _background, _thread
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _background is not None:
        _inherited.append(_background)
    _background = None
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_loop)


__all__ = [
    "background_loop",
    "block_until",
    "call_on_loop",
    "default_scheduler",
    "loop_for_subscription",
    "on_background_shutdown",
    "refuse_blocking",
    "refuse_blocking_run",
    "running_loop",
]
