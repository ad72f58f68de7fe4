"""Serving a generation's log as Server-Sent Events: ``id:`` is the entry id, so the
browser's ``Last-Event-ID`` resumes exactly where it stopped.

:func:`stream_relay` is an aiohttp handler body::

    async def events(request: web.Request) -> web.StreamResponse:
        return await stream_relay(request, relay, request.match_info["id"])

Frames: each entry's event as ``data: <JSON>`` (or the frames ``encode`` makes of it),
the entry id on the entry's last frame; then one closing frame without an id,
``{"type": "done"}`` or ``{"type": "error", "error": <the typed error's dict>}``. An
``EventSource`` reconnects after any close, so a page closes it on the closing frame.
A malformed generation id or ``Last-Event-ID`` is a ``400`` (JSON ``{"error": ...}``)
before any SSE; an unknown generation, or an id of another generation, needs a look at
the log: the headers are already sent then, so it is the closing ``error`` frame
(``ValidationError``). A client going away disposes its viewer only (serve with
``handler_cancellation=True``): it never stops the generation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from aiohttp import web

from rx_allm._sse_response import SSE_HEADERS, error_payload, write_until_end
from rx_allm.errors import ValidationError
from rx_allm.events import Event
from rx_allm.iterate import iterate
from rx_allm.relay.entry import RelayEntry
from rx_allm.relay.protocol import Relay

DONE = b'data: {"type":"done"}\n\n'


def event_json(event: Event) -> Sequence[str]:
    """The default frames of an event: its JSON (``event.model_dump(mode="json")``)."""
    return (event.model_dump_json(),)


def entry_frames(entry: RelayEntry, encode: Callable[[Event], Sequence[str]] = event_json) -> bytes:
    """The SSE bytes of one entry: its frames, the entry id on the last one."""
    frames = encode(entry.event)
    if not frames:
        return b""
    head = "".join(f"data: {data}\n\n" for data in frames[:-1])
    return f"{head}id: {entry.id}\ndata: {frames[-1]}\n\n".encode()


def closing_frame(error: Exception | None) -> bytes:
    """``done``, or ``error`` with the typed error's data form (untyped errors are wrapped)."""
    if error is None:
        return DONE
    payload = error_payload(error, "relay stream failed: {type}")
    return f"data: {json.dumps(payload, separators=(',', ':'), default=str)}\n\n".encode()


def refused(error: ValidationError) -> web.Response:
    """The ``400`` JSON answer to a malformed generation id or resume id."""
    return web.json_response({"error": error.to_dict()}, status=400)


async def stream_relay(
    request: web.Request,
    relay: Relay,
    generation_id: str,
    *,
    after: str | None = None,
    encode: Callable[[Event], Sequence[str]] = event_json,
) -> web.StreamResponse:
    """Stream the generation's entries after ``after`` (default: the ``Last-Event-ID`` header)."""
    if after is None:
        after = request.headers.get("Last-Event-ID") or None
    try:
        entries = relay.observe(generation_id, after=after)
    except ValidationError as error:
        return refused(error)
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    async with iterate(entries) as stream:
        closing = await write_until_end(response, stream, lambda entry: entry_frames(entry, encode))
        await response.write(closing_frame(closing))
    await response.write_eof()
    return response
