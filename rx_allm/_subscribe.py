"""Subscribing without reactivex's trampoline set-up, for the library's own sinks.

``Observable.subscribe`` first makes sure the current thread's trampoline runs, so that work
an Observable schedules on ``CurrentThreadScheduler`` waits until its subscription is
assigned; when none runs yet, that costs ~10 µs a subscription (a scheduled item, clock
reads, a priority queue under a lock), a fifth of a Fake ``generate``. :func:`subscribe_now`
subscribes directly instead. It is used where that ordering cannot matter: sinks that never
dispose from inside a delivery (``collect``, the chat's fold and its step observer) and the
Fake's replay, which never schedules on the current thread. A source further in that does
schedule there still gets the trampoline from its own ``subscribe``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.observer.autodetachobserver import AutoDetachObserver

_T = TypeVar("_T")


def subscribe_now(
    source: Observable[_T],
    on_next: abc.OnNext[_T] | None = None,
    on_error: abc.OnError | None = None,
    on_completed: abc.OnCompleted | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> abc.DisposableBase:
    """``source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)``, run directly."""
    if not isinstance(source, Observable):
        return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
    observer: AutoDetachObserver[_T] = AutoDetachObserver(on_next, on_error, on_completed)
    try:
        subscription: Any = source._subscribe_core(observer, scheduler)
    except Exception as exc:  # as Observable.subscribe: delivered as on_error unless already stopped
        if not observer.fail(exc):
            raise
    else:
        observer.subscription = subscription if hasattr(subscription, "dispose") else Disposable(subscription)
    return Disposable(observer.dispose)


__all__ = ["subscribe_now"]
