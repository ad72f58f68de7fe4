"""What the library's SSE responses share: their headers, the payload of the closing
``error`` frame, and the loop that writes a stream's items until it ends.

The relay (:mod:`rx_allm.relay.sse`) and the UI (:mod:`rx_allm.ui.push`, the AG-UI
headers) build on it, so neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from aiohttp import web

from rx_allm.errors import RxAllmError, StreamError

T = TypeVar("T")

#: Response headers of an event stream (``X-Accel-Buffering`` keeps nginx from buffering it).
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def error_payload(error: Exception, untyped: str) -> dict[str, Any]:
    """``{"type": "error", "error": <the typed error's dict>}``; an untyped error becomes
    ``StreamError("unknown", untyped.format(type=<its class name>, error=error))``."""
    if not isinstance(error, RxAllmError):
        error = StreamError("unknown", untyped.format(type=type(error).__name__, error=error))
    return {"type": "error", "error": error.to_dict()}


async def write_until_end(
    response: web.StreamResponse, stream: AsyncIterator[T], write: Callable[[T], bytes]
) -> Exception | None:
    """Write ``write(item)`` of each item of ``stream``; the stream's error, or ``None`` at its end."""
    while True:
        try:
            item = await anext(stream)
        except StopAsyncIteration:
            return None
        except Exception as error:  # the stream's terminal on_error
            return error
        await response.write(write(item))
