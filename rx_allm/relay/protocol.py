"""The protocol every relay implements (``MemoryRelay``, ``RedisRelay``)."""

from __future__ import annotations

from typing import Any, Protocol

from reactivex import Observable

from rx_allm.relay.entry import RelayEntry


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
