"""aiohttp handlers that do a whole browser exchange: parse, run the chat, stream the frames.

``ai_sdk_handler(engine, tools=[...], **opts)`` answers ``useChat``'s default transport;
``ag_ui_handler(...)`` answers an AG-UI ``HttpAgent``. Each request:

1. reads the body; anything malformed → ``400`` with a one-line ``text/plain`` reason and
   nothing sent upstream (a refused pre-flight — no key, no model — answers the same way:
   ``400`` for a validation error, ``500`` otherwise);
2. runs ``stream_chat(engine, messages, tools=..., **opts)``;
3. streams the protocol's SSE frames; an upstream error arrives as the protocol's error
   frame, then the stream ends cleanly.

When the client goes away, the handler is cancelled and the subscription disposed, which
cancels the provider request and any running tool. That needs the server to cancel
handlers of closed connections: ``web.AppRunner(app, handler_cancellation=True)`` (or
``web.run_app(app, handler_cancellation=True)``); without it aiohttp notices a closed
connection only at the next write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from reactivex import Observable

from rx_allm.engine import Engine
from rx_allm.errors import RxAllmError, ValidationError
from rx_allm.iterate import iterate
from rx_allm.models import Tool
from rx_allm.ui._encoder import error_text
from rx_allm.ui.ag_ui import AG_UI_HEADERS, ag_ui_sse
from rx_allm.ui.ag_ui_input import messages_from_ag_ui
from rx_allm.ui.ai_sdk import AI_SDK_HEADERS, ai_sdk_sse
from rx_allm.ui.ai_sdk_messages import messages_from_ai_sdk
from rx_allm.ui.run import chat_events, describe

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ai_sdk_handler(engine: Engine, *, tools: Sequence[Any] = (), **opts: Any) -> Handler:
    """A handler for ``POST`` requests of ``useChat`` (AI SDK UI message stream ``v1``)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            events = chat_events(engine, messages_from_ai_sdk(body), tools, opts)
        except RxAllmError as error:
            return refused(error)
        frames = ai_sdk_sse(events, metadata=describe(engine, opts))
        return await stream_sse(request, frames, AI_SDK_HEADERS)

    return handle


def ag_ui_handler(engine: Engine, *, tools: Sequence[Any] = (), **opts: Any) -> Handler:
    """A handler for ``POST`` requests of an AG-UI client (``RunAgentInput`` in, AG-UI events out).

    The tools the client declares are offered to the model as tools the client runs: a call
    to one ends the run (``manual_tool_calls``) for the client to answer.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            run = messages_from_ag_ui(body)
            offered: list[Any] = [*tools, *_client_tools(run.tools, tools)]
            events = chat_events(engine, run.thread, offered, opts)
        except RxAllmError as error:
            return refused(error)
        frames = ag_ui_sse(events, thread_id=run.thread_id, run_id=run.run_id)
        return await stream_sse(request, frames, AG_UI_HEADERS)

    return handle


def _client_tools(client: list[Tool], server: Sequence[Any]) -> list[Tool]:
    taken = {getattr(t, "name", None) for t in server}
    return [t for t in client if t.name not in taken]


def refused(error: RxAllmError) -> web.Response:
    """The answer to a request refused before any I/O: one line, keys redacted."""
    status = 400 if isinstance(error, ValidationError) else 500
    line = error_text(error)
    return web.Response(status=status, text=line, content_type="text/plain")


async def stream_sse(
    request: web.Request, frames: Observable[bytes], headers: dict[str, str]
) -> web.StreamResponse:
    """Write ``frames`` to the client of ``request``; leaving (cancellation, a reset) disposes them."""
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    async with iterate(frames) as stream:
        try:
            async for frame in stream:
                await response.write(frame)
        except ConnectionResetError:
            return response  # the client left between two writes: the subscription is disposed on exit
    await response.write_eof()
    return response


__all__ = ["Handler", "ag_ui_handler", "ai_sdk_handler", "refused", "stream_sse"]
