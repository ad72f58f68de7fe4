"""The chat app behind ``rx-allm serve``: the built page and its endpoints.

==================================  =====================================================
``GET /``, ``GET /assets/...``      the page (built with vite from ``web/``, shipped in
                                    the package: no Node needed at run time)
``GET /api/info``                   ``{"provider", "model"}``
``POST /api/chat``                  ``useChat``'s default transport: the UI message stream
``GET /api/chat/{id}``              ``{"messages": [...]}``: what the chat was last sent
``GET /api/chat/{id}/stream``       the chat's latest reply, replayed then live (``204``
                                    when there is none): a second tab or a refresh follows
``POST /api/chat/{id}/stop``        Stop: cancel the chat's reply for every viewer
``POST /api/agui``                  the same engine and tools for AG-UI clients
==================================  =====================================================

Replies run in a relay (:mod:`rx_allm.ui.rooms`). Stop in the page calls the stop route
(and aborts its own request); a tab closing or refreshing is never a Stop: a reply nobody
watches keeps running ``linger`` seconds (the relay's ``idle_timeout``) for a refresh to
come back, then is cancelled. With a :class:`~rx_allm.relay.RedisRelay` and a
:class:`~rx_allm.ui.rooms.RedisRoomStore`, several worker processes serve one app. Serve
it with ``handler_cancellation=True``, as :func:`start` does.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from importlib import resources
from typing import Any

from aiohttp import web
from reactivex import operators as ops

from rx_allm.engine import Engine
from rx_allm.errors import RxAllmError
from rx_allm.relay import RelayEntry
from rx_allm.ui.ai_sdk import AI_SDK_HEADERS, ai_sdk_sse
from rx_allm.ui.ai_sdk_messages import messages_from_ai_sdk
from rx_allm.ui.handlers import ag_ui_handler, refused, stream_sse
from rx_allm.ui.rooms import Room, Rooms, memory_relay
from rx_allm.ui.run import chat_events, describe

ROOMS = web.AppKey("rooms", Rooms)
LINGER = 10.0
STATIC = resources.files("rx_allm.ui").joinpath("static")


def make_chat_app(
    engine: Engine,
    *,
    tools: Sequence[Any] = (),
    linger: float = LINGER,
    rooms: Rooms | None = None,
    **opts: Any,
) -> web.Application:
    """The chat app for ``engine`` (``tools`` run on the server; ``opts`` go to every call);
    ``rooms`` hold chats and replies (default: this process, a reply unwatched ``linger`` s)."""
    app = web.Application()
    rooms = app[ROOMS] = rooms or Rooms(memory_relay(linger))
    info = describe(engine, opts)

    async def send(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            messages = messages_from_ai_sdk(body)
            events = chat_events(engine, messages, tools, opts)
        except RxAllmError as error:
            return refused(error)
        sent = json.loads(body)
        chat_id = sent.get("id") if isinstance(sent.get("id"), str) else secrets.token_hex(6)
        room = await rooms.start(chat_id, sent["messages"], events)
        return await _watch(request, rooms, room, info)

    async def follow(request: web.Request) -> web.StreamResponse:
        room = await rooms.get(request.match_info["id"])
        if room is None:
            return web.Response(status=204)
        return await _watch(request, rooms, room, info)

    async def stop(request: web.Request) -> web.Response:
        await rooms.stop(request.match_info["id"])
        return web.Response(status=204)

    async def history(request: web.Request) -> web.Response:
        room = await rooms.get(request.match_info["id"])
        return web.json_response({"messages": room.messages if room is not None else []})

    async def stop_all(app: web.Application) -> None:
        await rooms.close()

    app.router.add_get("/", _page)

    async def describe_engine(request: web.Request) -> web.Response:
        return web.json_response(info)

    app.router.add_get("/api/info", describe_engine)
    app.router.add_post("/api/chat", send)
    app.router.add_get("/api/chat/{id}", history)
    app.router.add_get("/api/chat/{id}/stream", follow)
    app.router.add_post("/api/chat/{id}/stop", stop)
    app.router.add_post("/api/agui", ag_ui_handler(engine, tools=tools, **opts))
    app.router.add_static("/assets", str(STATIC.joinpath("assets")))
    app.on_shutdown.append(stop_all)
    return app


async def _watch(request: web.Request, rooms: Rooms, room: Room, info: dict[str, Any]) -> web.StreamResponse:
    events = rooms.relay.observe(room.generation_id).pipe(ops.map(_event))
    frames = ai_sdk_sse(events, message_id=room.message_id, metadata=info)
    return await stream_sse(request, frames, AI_SDK_HEADERS)


async def _page(request: web.Request) -> web.Response:
    page = STATIC.joinpath("index.html").read_bytes()
    return web.Response(body=page, content_type="text/html", charset="utf-8")


def _event(entry: RelayEntry) -> Any:
    return entry.event
