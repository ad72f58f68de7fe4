"""Generations shared by several worker processes through Redis: any worker serves any viewer.

Run it (Redis on localhost; answers from the Fake adapter, or from an OpenAI-compatible
endpoint with ``--base-url`` and ``OPENAI_API_KEY``)::

    python examples/relay_workers.py --redis redis://127.0.0.1:6379/0 --workers 2 --port 8080

Worker ``i`` listens on ``port + i`` (``--port 0``: any free port each; every worker prints
its address). Put a load balancer in front: no stickiness needed.
Every route works on every worker:

==========================================  =================================================
``POST /generations`` ``{"prompt": ...}``   start a generation on this worker → ``{"id": ...}``
``GET /generations/{id}/events``            SSE: ``id:`` = entry id; ``Last-Event-ID`` resumes
``POST /generations/{id}/stop``             cancel it, wherever it runs → ``{"stopped": bool}``
==========================================  =================================================

Responses carry ``X-Worker: <i>``. A viewer closing its connection (a refresh, a closed
tab) stops nothing; the generation goes on and a reconnect resumes after the last entry
it received.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys

from aiohttp import web

import rx_allm as allm
from rx_allm.relay import RedisRelay
from rx_allm.relay.sse import stream_relay
from rx_allm.ui.serving import run_processes


def engine_for(base_url: str | None) -> allm.Engine:
    """An OpenAI-compatible endpoint when ``base_url`` is given, else a slow scripted Fake."""
    if base_url:
        return allm.Engine(adapter="openai", adapter_opts={"base_url": base_url}, model="gpt-4o-mini")
    words = [step for i in range(30) for step in (("text", f"word{i} "), ("delay", 0.1))]
    return allm.Engine(adapter="fake", adapter_opts={"script": [*words, ("finish", "stop")]})


def make_app(relay: RedisRelay, engine: allm.Engine, worker: int) -> web.Application:
    """The three routes of one worker."""

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        prompt = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            raise web.HTTPBadRequest(text="a non-empty prompt is required")
        generation_id = secrets.token_urlsafe(12)
        events = allm.stream_generate(engine, allm.request([allm.user(prompt)]))
        await relay.start(generation_id, events)  # this worker produces; any worker can serve it
        return web.json_response({"id": generation_id}, status=201)

    async def events(request: web.Request) -> web.StreamResponse:
        return await stream_relay(request, relay, request.match_info["id"])

    async def stop(request: web.Request) -> web.Response:
        return web.json_response({"stopped": await relay.stop(request.match_info["id"])})

    async def tag(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Worker"] = str(worker)

    app = web.Application()
    app.on_response_prepare.append(tag)
    app.router.add_post("/generations", create)
    app.router.add_get("/generations/{id}/events", events)
    app.router.add_post("/generations/{id}/stop", stop)
    return app


async def serve_worker(redis_url: str, base_url: str | None, port: int, worker: int) -> None:
    """Serve one worker until cancelled; stops the generations it produces on the way out."""
    relay = RedisRelay(redis_url)
    runner = web.AppRunner(make_app(relay, engine_for(base_url), worker), handler_cancellation=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        address = f"http://127.0.0.1:{runner.addresses[0][1]}"
        print(f"worker {worker}: {address}\n", end="", flush=True)  # one write: workers share stdout
        await asyncio.get_running_loop().create_future()  # until the process is told to stop
    finally:
        await relay.close()
        await runner.cleanup()


def run_worker(redis_url: str, base_url: str | None, port: int, worker: int) -> None:
    """One worker process."""
    asyncio.run(serve_worker(redis_url, base_url, port, worker))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: the Fake adapter)")
    args = parser.parse_args(argv)
    ports = [args.port + i if args.port else 0 for i in range(args.workers)]  # 0: any free port each
    workers = [(args.redis, args.base_url, port, i) for i, port in enumerate(ports)]
    return run_processes(run_worker, workers)  # SIGTERM or Ctrl-C stops them all


if __name__ == "__main__":
    sys.exit(main())
