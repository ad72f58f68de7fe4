"""The knobs every relay shares (retention, idle timeout, heartbeat) and scheduler choice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from reactivex import abc
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rx_allm.errors import ValidationError


@dataclass(frozen=True)
class RelayOptions:
    """Retention and liveness settings (seconds; ``maxlen`` in entries).

    * ``maxlen`` — entries kept per generation (Redis trims approximately: ``MAXLEN ~``);
      a viewer whose next entry was trimmed gets a typed error, never a gap.
    * ``ttl`` — how long a generation's log is kept after its last write.
    * ``idle_timeout`` — a running generation nobody watches for this long is cancelled.
    * ``heartbeat_interval`` / ``heartbeat_timeout`` — the producer beats every interval;
      viewers end with ``StreamError("timeout")`` when no beat came for the timeout.
    """

    maxlen: int = 50_000
    ttl: float = 600.0
    idle_timeout: float = 30.0
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 5.0

    def __post_init__(self) -> None:
        problems = [
            (name, "must_be_positive")
            for name in ("maxlen", "ttl", "idle_timeout", "heartbeat_interval", "heartbeat_timeout")
            if not _positive(getattr(self, name))
        ]
        if not problems and self.heartbeat_timeout <= self.heartbeat_interval:
            problems.append(("heartbeat_timeout", "must_exceed_heartbeat_interval"))
        if not problems and self.idle_timeout <= self.heartbeat_interval:
            problems.append(("idle_timeout", "must_exceed_heartbeat_interval"))
        if problems:
            raise ValidationError("invalid_request", errors=problems)


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def every(scheduler: abc.SchedulerBase, period: float, action: Callable[[], None]) -> abc.DisposableBase:
    """Run ``action`` every ``period`` seconds on ``scheduler`` (dispose to stop)."""
    if not isinstance(scheduler, abc.PeriodicSchedulerBase):
        raise TypeError(f"{type(scheduler).__name__} cannot schedule periodic work")
    return scheduler.schedule_periodic(period, lambda _state: action())


def scheduler_for(given: abc.SchedulerBase | None) -> abc.SchedulerBase:
    """``given``, else the running loop's scheduler, else reactivex's timer threads."""
    if given is not None:
        return given
    try:
        return AsyncIOScheduler(asyncio.get_running_loop())
    except RuntimeError:
        return TimeoutScheduler.singleton()
