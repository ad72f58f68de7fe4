"""Generations that outlive their connection: a durable, ordered event log per generation.

* ``relay.start(generation_id, source)`` runs ``source`` once (one producer, even across
  processes), appending each event to the generation's log, then one terminal entry;
* ``relay.observe(generation_id, after=None)`` is a cold Observable of
  :class:`RelayEntry` from the start or strictly after an entry id, ending with the
  producer's terminal (``on_completed``, or ``on_error`` with the same typed error);
* ``relay.stop(generation_id)`` from anywhere disposes the producer's source; viewers
  get ``StreamError("cancelled")``. A viewer leaving never stops a generation.

:class:`MemoryRelay` keeps the logs in one process; :class:`RedisRelay` (extra ``redis``)
keeps them in Redis Streams so any worker process or host can serve any viewer.
See the "Scale out" guide.
"""

from typing import TYPE_CHECKING, Any

from rx_allm.relay.entry import RelayEntry
from rx_allm.relay.memory import MemoryRelay
from rx_allm.relay.options import RelayOptions
from rx_allm.relay.protocol import Relay

if TYPE_CHECKING:
    from rx_allm.relay.redis_relay import RedisRelay

__all__ = ["MemoryRelay", "RedisRelay", "Relay", "RelayEntry", "RelayOptions"]


def __getattr__(name: str) -> Any:
    if name == "RedisRelay":  # imported on use: redis-py is an optional extra
        from rx_allm.relay.redis_relay import RedisRelay

        return RedisRelay
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
