"""The protocol every relay implements (``MemoryRelay``, ``RedisRelay``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from reactivex import Observable, abc, create

from rx_allm.relay.entry import RelayEntry, check_generation_id, parse_after

#: How a relay attaches one viewer: ``(observer, after position or None, subscription scheduler)``.
Attach = Callable[
    [abc.ObserverBase[RelayEntry], tuple[int, int] | None, abc.SchedulerBase | None], abc.DisposableBase
]


class Relay(Protocol):
    """Start, observe and stop generations by id."""

    async def start(self, generation_id: str, source: Observable[Any]) -> bool:
        """Run ``source`` once as this generation; False if it was already started (anywhere)."""
        ...

    def observe(self, generation_id: str, after: str | None = None) -> Observable[RelayEntry]:
        """A cold Observable of the log's entries (after ``after``), ending with the terminal."""
        ...

    async def stop(self, generation_id: str) -> bool:
        """Cancel a running generation; False if it had already ended."""
        ...

    async def close(self) -> None:
        """Release the relay's resources (stops the generations it produces)."""
        ...


def viewer_observable(generation_id: str, after: str | None, attach: Attach) -> Observable[RelayEntry]:
    """The cold Observable ``observe`` returns: ids checked now (raising), ``attach`` per subscription."""
    check_generation_id(generation_id)
    position = parse_after(after)

    def subscribe(
        observer: abc.ObserverBase[RelayEntry], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return attach(observer, position, scheduler)

    return create(subscribe)
