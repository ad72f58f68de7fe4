"""The demo web application: a page, and its generations streamed over SSE.

Routes (``{id}`` is a generation id):

===========================================  ====================================================
``GET /``                                    the page: prompt box, live token view, Stop button
``POST /api/generations``                    create from ``{"prompt": ...}`` (JSON or form) → 201
                                             ``{"id", "state"}``; a refused call (pre-flight) →
                                             ``{"error": {...}}`` with 400 (validation) or 500
``GET /api/generations/{id}``                ``{"id", "prompt", "state", "viewers"}``
``GET /api/generations/{id}/events``         attach as a viewer: SSE (see :mod:`rx_allm.demo.push`);
                                             the first viewer starts the request; ``Last-Event-ID``
                                             resumes after that event
``POST /api/generations/{id}/stop``          cancel the request; every viewer gets ``cancelled``
``GET /api/stream?prompt=...``               create and attach in one request; a first frame
                                             ``{"type": "generation", "id": ...}`` names it
===========================================  ====================================================

Closing the last viewer of a running generation cancels its request (see
:mod:`rx_allm.demo.generations`). The app must be served with
``handler_cancellation=True`` so a closed connection cancels its handler at once, as
:func:`rx_allm.demo.server.start` does.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from aiohttp import web

from rx_allm.demo.generations import Generation, Generations
from rx_allm.demo.push import SSE_HEADERS, dumps, error_payload, frame, push_events
from rx_allm.engine import Engine
from rx_allm.errors import RxAllmError, ValidationError

GENERATIONS = web.AppKey("generations", Generations)
MAX_PROMPT_CHARS = 32_000


def make_app(engine: Engine) -> web.Application:
    """The demo's aiohttp application for ``engine``."""
    app = web.Application()
    app[GENERATIONS] = Generations(engine)
    page = resources.files("rx_allm.demo").joinpath("index.html").read_bytes()

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def stop_all(app: web.Application) -> None:
        app[GENERATIONS].stop_all()

    app.router.add_get("/", index)
    app.router.add_post("/api/generations", create)
    app.router.add_get("/api/generations/{id}", status)
    app.router.add_get("/api/generations/{id}/events", events)
    app.router.add_post("/api/generations/{id}/stop", stop)
    app.router.add_get("/api/stream", create_and_watch)
    app.on_shutdown.append(stop_all)
    return app


async def create(request: web.Request) -> web.Response:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return _bad_request("the body is not JSON")
        prompt = body.get("prompt") if isinstance(body, dict) else None
    else:
        prompt = (await request.post()).get("prompt")
    problem = _prompt_problem(prompt)
    if problem:
        return _bad_request(problem)
    assert isinstance(prompt, str)
    try:
        generation = request.app[GENERATIONS].create(prompt)
    except RxAllmError as error:
        return web.json_response(
            {"error": error.to_dict()}, status=400 if isinstance(error, ValidationError) else 500
        )
    return web.json_response({"id": generation.id, "state": generation.state}, status=201)


async def status(request: web.Request) -> web.Response:
    generation = _generation(request)
    return web.json_response(
        {
            "id": generation.id,
            "prompt": generation.prompt,
            "state": generation.state,
            "viewers": generation.viewers,
        }
    )


async def events(request: web.Request) -> web.StreamResponse:
    generation = _generation(request)
    after = _last_event_id(request) + 1
    return await push_events(request, generation.watch(after), first_id=after)


async def stop(request: web.Request) -> web.Response:
    generation = _generation(request)
    generation.stop("stopped by a viewer")
    return web.json_response({"id": generation.id, "state": generation.state})


async def create_and_watch(request: web.Request) -> web.StreamResponse:
    prompt = request.query.get("prompt")
    problem = _prompt_problem(prompt)
    if problem:
        return _bad_request(problem)
    assert prompt is not None
    try:
        generation = request.app[GENERATIONS].create(prompt)
    except RxAllmError as error:
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        await response.write(frame(dumps(error_payload(error))))
        await response.write_eof()
        return response
    return await push_events(
        request, generation.watch(), preamble=[{"type": "generation", "id": generation.id}]
    )


def _generation(request: web.Request) -> Generation:
    generation = request.app[GENERATIONS].get(request.match_info["id"])
    if generation is None:
        raise web.HTTPNotFound(
            text=dumps({"error": {"message": "no such generation"}}), content_type="application/json"
        )
    return generation


def _last_event_id(request: web.Request) -> int:
    try:
        return max(-1, int(request.headers.get("Last-Event-ID", "-1")))
    except ValueError:
        return -1


def _prompt_problem(prompt: Any) -> str | None:
    if not isinstance(prompt, str) or not prompt.strip():
        return "a non-empty prompt is required"
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"the prompt is longer than {MAX_PROMPT_CHARS} characters"
    return None


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=400)


__all__ = [
    "GENERATIONS",
    "MAX_PROMPT_CHARS",
    "create",
    "create_and_watch",
    "events",
    "make_app",
    "status",
    "stop",
]
