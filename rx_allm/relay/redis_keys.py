"""Redis key names of one generation and the failures of Redis itself."""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: What a Redis call may raise: the client's errors, and socket-level ones under them.
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class GenerationKeys:
    """``<prefix>:{<id>}:log|claim|alive|watched`` (one hash slot per generation in a cluster).

    * ``log`` — the Redis stream of entries;
    * ``claim`` — the single-producer guard (``SET NX``), holds the generation's tag;
    * ``alive`` — the producer's heartbeat (expires ``heartbeat_timeout`` after the last beat);
    * ``watched`` — refreshed by viewers; its expiry is the idle timeout.
    """

    log: str
    claim: str
    alive: str
    watched: str

    @classmethod
    def of(cls, prefix: str, generation_id: str) -> GenerationKeys:
        base = f"{prefix}:{{{generation_id}}}"
        return cls(f"{base}:log", f"{base}:claim", f"{base}:alive", f"{base}:watched")


def failure_reason(problem: Exception) -> str:
    """The ``AdapterError`` reason of a Redis failure: ``timeout``, ``network_error`` or ``unknown``."""
    if isinstance(problem, (RedisTimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(problem, (RedisConnectionError, OSError)):
        return "network_error"
    return "unknown"
