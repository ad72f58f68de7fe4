"""Log entries of a generation: ids, the entry a viewer receives, the encoded form.

An entry id is ``"<n>-<tag>"``: ``n`` is the entry's position in the generation's log
(1, 2, 3, ...) and ``tag`` a random number drawn once per generation. It is a valid
Redis Streams id (``ms-seq``), increasing within a log, and it names its generation:
an id from another generation carries another tag, an id from the future a position
the log has not reached. The browser keeps it as the SSE ``Last-Event-ID``.

An entry is either an event (its JSON, ``event.model_dump(mode="json")``, read back with
:func:`~rx_allm.events.parse_event`) or the generation's one terminal: completed, or the
typed error's ``to_dict()`` form (``StreamError("cancelled")`` after a stop).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, NamedTuple

from pydantic import BaseModel

from rx_allm.errors import RxAllmError, ValidationError
from rx_allm.events import Event, parse_event
from rx_allm.relay.failures import bad_after

#: What a generation id may hold: it becomes part of Redis keys and URLs.
GENERATION_ID = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_ENTRY_ID = re.compile(r"([1-9][0-9]{0,18})-([0-9]{1,19})")
#: Completed terminal's payload.
COMPLETED = "null"


class RelayEntry(NamedTuple):
    """One event of a generation's log and its id (the SSE ``id:``); immutable."""

    id: str
    event: Event

    @property
    def position(self) -> int:
        """The entry's position in its log (1 for the first event)."""
        return int(self.id.partition("-")[0])


def new_tag() -> int:
    """A generation's random tag (the second half of its entry ids)."""
    return secrets.randbits(31) + 1


def entry_id(position: int, tag: int) -> str:
    """The id of the entry at ``position`` of the log tagged ``tag``."""
    return f"{position}-{tag}"


def check_generation_id(generation_id: Any) -> str:
    """Return ``generation_id`` or raise ``ValidationError`` (1-128 of ``A-Z a-z 0-9 . _ ~ : -``)."""
    if not isinstance(generation_id, str) or not GENERATION_ID.fullmatch(generation_id):
        raise ValidationError(
            "invalid_request",
            errors=[("generation_id", "expected 1-128 characters of A-Z a-z 0-9 . _ ~ : -")],
        )
    return generation_id


def parse_after(after: Any) -> tuple[int, int] | None:
    """``(position, tag)`` of an ``after`` entry id (``None``: from the start); raises on bad syntax."""
    if after is None:
        return None
    match = _ENTRY_ID.fullmatch(after) if isinstance(after, str) else None
    if match is None:
        raise ValidationError("invalid_request", errors=[("after", "not a relay entry id")])
    return int(match[1]), int(match[2])


def check_after(generation_id: str, after: tuple[int, int] | None, tag: int, first: int, last: int) -> int:
    """The position to read after, checked against the log (``first``..``last`` are retained).

    Raises ``ValidationError`` for an id of another generation, one the log has not
    reached, or one whose successors were trimmed by retention.
    """
    if after is None:
        position = 0
    else:
        position, after_tag = after
        if after_tag != tag:
            raise bad_after(generation_id, "belongs to another generation")
        if position > last:
            raise bad_after(generation_id, f"is ahead of the log (last position {last})")
    if last and position + 1 < first:
        raise bad_after(generation_id, f"precedes the retained entries (first position {first})")
    return position


def encode_event(event: Any) -> str:
    """The event's JSON; raises ``TypeError``/``ValueError`` when it cannot be serialised."""
    if not isinstance(event, BaseModel) or not isinstance(getattr(event, "type", None), str):
        raise TypeError(f"{type(event).__name__} is not an rx_allm event (a pydantic model with a `type`)")
    return event.model_dump_json()


def decode_event(data: str | bytes) -> Event:
    """The event of an encoded entry."""
    return parse_event(data)


def encode_terminal(error: RxAllmError | None) -> str:
    """The terminal entry: :data:`COMPLETED`, or the typed error's data form."""
    return COMPLETED if error is None else json.dumps(error.to_dict(), separators=(",", ":"))


def decode_terminal(data: str | bytes) -> RxAllmError | None:
    """``None`` for completed, else the rebuilt typed error (equal to the producer's)."""
    payload = json.loads(data)
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise ValueError("a terminal entry holds null or an error object")
    return RxAllmError.from_dict(payload)
