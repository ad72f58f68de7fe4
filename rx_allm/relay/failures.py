"""The typed errors of the relay, all from the closed taxonomy of :mod:`rx_allm.errors`.

=====================================================  ==============================================
situation                                              error
=====================================================  ==============================================
unknown generation id, bad ``after`` id                ``ValidationError("invalid_request")``, at once
``RedisRelay.observe`` subscribed with no running loop  ``ValidationError("invalid_request")``, at once
stopped, or nobody watched for ``idle_timeout``        ``StreamError("cancelled")``
an event that cannot be serialised                     ``StreamError("malformed_event")``
an entry a viewer cannot read back                     ``StreamError("malformed_event")``
the producer stopped beating (process killed)          ``StreamError("timeout")``
the log vanished or was trimmed under a viewer         ``StreamError("truncated")``
Redis unreachable, restarted, too slow                 ``AdapterError("network_error" | "timeout")``
the source's own error                                 that error, unchanged (untyped: ``unknown``)
=====================================================  ==============================================

Every relay error's ``metadata`` names the ``generation_id``; those raised by the
relay itself (not carried from the source) also say ``relay``: what went wrong.
"""

from __future__ import annotations

from rx_allm.errors import AdapterError, RxAllmError, StreamError, ValidationError


def _meta(generation_id: str, relay: str) -> dict[str, str]:
    return {"generation_id": generation_id, "relay": relay}


def unknown_generation(generation_id: str) -> ValidationError:
    """No producer started this id (or its log expired)."""
    return ValidationError(
        "invalid_request",
        f"relay: no generation {generation_id!r}",
        errors=[("generation_id", "unknown generation")],
        metadata=_meta(generation_id, "unknown_generation"),
    )


def bad_after(generation_id: str, why: str) -> ValidationError:
    """An ``after`` entry id the generation's log cannot resume from."""
    return ValidationError(
        "invalid_request",
        f"relay: the `after` entry id {why}",
        errors=[("after", why)],
        metadata=_meta(generation_id, "bad_after"),
    )


def no_running_loop(generation_id: str) -> ValidationError:
    """A Redis viewer subscribed outside the event loop its reads run on."""
    return ValidationError(
        "invalid_request",
        "relay: subscribe to RedisRelay.observe(...) on the event loop the relay runs on",
        errors=[("observe", "no running event loop")],
        metadata=_meta(generation_id, "no_running_loop"),
    )


def cancelled(generation_id: str, why: str) -> StreamError:
    """The terminal of a stopped (or idle) generation."""
    return StreamError(
        "cancelled", f"relay: generation {generation_id!r} {why}", metadata=_meta(generation_id, why)
    )


def unserialisable(generation_id: str, position: int, problem: Exception) -> StreamError:
    """The producer's terminal when an event has no JSON form."""
    return _malformed(
        generation_id, position, problem, "event", "cannot be serialised", "unserialisable_event"
    )


def malformed_entry(generation_id: str, position: int, problem: Exception) -> StreamError:
    """A log entry a viewer cannot read back (an event type this process does not know, ...)."""
    return _malformed(generation_id, position, problem, "entry", "cannot be read", "unreadable_entry")


def _malformed(
    generation_id: str, position: int, problem: Exception, what: str, why: str, relay: str
) -> StreamError:
    return StreamError(
        "malformed_event",
        f"relay: {what} {position} of generation {generation_id!r} {why}: "
        f"{type(problem).__name__}: {problem}",
        event_index=position - 1,
        metadata=_meta(generation_id, relay),
    )


def producer_lost(generation_id: str, seconds: float) -> StreamError:
    """The producer stopped beating before it wrote a terminal (its process died)."""
    return StreamError(
        "timeout",
        f"relay: the producer of generation {generation_id!r} sent no heartbeat for {seconds:g} s",
        metadata=_meta(generation_id, "producer_lost"),
    )


def log_gone(generation_id: str, why: str) -> StreamError:
    """Entries a viewer still needed are gone (the log expired, Redis lost it, trimmed under it)."""
    return StreamError(
        "truncated",
        f"relay: the log of generation {generation_id!r} {why}",
        metadata=_meta(generation_id, "log_gone"),
    )


def redis_failure(generation_id: str, where: str, problem: Exception, reason: str) -> AdapterError:
    """Redis unreachable, restarted under a connection, or slower than the relay's timeout."""
    return AdapterError(
        reason,
        f"relay: Redis failed while {where} (generation {generation_id!r}): "
        f"{type(problem).__name__}: {problem}",
        provider="redis",
        metadata=_meta(generation_id, "redis"),
    )


def typed(error: Exception) -> RxAllmError:
    """The source's error as it goes into the log: typed errors as they are, others wrapped."""
    if isinstance(error, RxAllmError):
        return error
    return StreamError("unknown", f"the source failed: {type(error).__name__}: {error}", cause=error)
