"""Pushing an Observable of events to a browser as Server-Sent Events.

:func:`push_events` is the whole pattern of a reactive UI back end: subscribe, write one
``data:`` frame per event, end with a ``done`` or ``error`` frame, dispose when the
client goes away. Frames (each event's JSON has its ``type``)::

    id: 3
    data: {"type":"text_delta","id":null,"delta":" world"}

    data: {"type":"done"}                                             (after on_completed)
    data: {"type":"error","error":{"type":"AdapterError","reason":"rate_limited",...}}

Numbered frames carry rx_allm events; the closing frame has no ``id``. Disposal: when
the browser closes the connection, the server must cancel the handler (``aiohttp``'s
``handler_cancellation=True``); the cancelled ``await`` closes the iterator, which
disposes the subscription and so cancels the provider request.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from reactivex import Observable

from rx_allm import _sse_response
from rx_allm._sse_response import SSE_HEADERS, write_until_end
from rx_allm.events import Event
from rx_allm.iterate import iterate


def frame(data: str, event_id: int | None = None) -> bytes:
    """One SSE frame of a single-line ``data`` (JSON never holds a raw line break)."""
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}data: {data}\n\n".encode()


def error_payload(error: Exception) -> dict[str, Any]:
    """The closing ``error`` frame's payload: the typed error's data form (untyped ones are wrapped)."""
    return _sse_response.error_payload(error, "stream failed: {type}: {error}")


def dumps(payload: dict[str, Any]) -> str:
    """Compact JSON for a frame."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


async def push_events(
    request: web.Request,
    events: Observable[Event],
    *,
    first_id: int = 0,
    preamble: Iterable[dict[str, Any]] = (),
) -> web.StreamResponse:
    """Stream ``events`` to the client of ``request`` as SSE; returns when the stream ended.

    ``preamble`` payloads are sent first (unnumbered); events are numbered from
    ``first_id`` so a reconnecting ``EventSource`` can say where it stopped
    (``Last-Event-ID``).
    """
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    for payload in preamble:
        await response.write(frame(dumps(payload)))
    ids = itertools.count(first_id)

    def numbered(event: Event) -> bytes:
        return frame(event.model_dump_json(), next(ids))

    async with iterate(events) as stream:
        error = await write_until_end(response, stream, numbered)
    closing = {"type": "done"} if error is None else error_payload(error)
    await response.write(frame(dumps(closing)))
    await response.write_eof()
    return response


__all__ = ["dumps", "error_payload", "frame", "push_events"]
