"""A reactive UI back end in one route: each browser connection gets one LLM stream, pushed as SSE.

Run it (it answers from the Fake adapter, or from OpenAI when OPENAI_API_KEY is set)::

    python examples/ui_backend.py
    curl -N 'http://127.0.0.1:8080/chat?prompt=Say+hello'

In a page: ``new EventSource("/chat?prompt=" + encodeURIComponent(p)).onmessage = (m) => ...``;
each message is one rx_allm event as JSON, the last one ``{"type": "done"}`` or
``{"type": "error", "error": {"reason": ...}}``. Closing the EventSource (or the tab)
cancels the provider request: the server cancels the handler of a closed connection
(``handler_cancellation=True``), which disposes the subscription. To share one generation
between several tabs and resume after a refresh, see ``rx-allm serve`` (``rx_allm.ui.app``,
built on a relay).
"""

from __future__ import annotations

import os

from aiohttp import web

import rx_allm as allm
from rx_allm.ui.push import push_events


def make_app(engine: allm.Engine) -> web.Application:
    """One route: ``GET /chat?prompt=...`` streams the reply's events."""

    async def chat(request: web.Request) -> web.StreamResponse:
        prompt = request.query.get("prompt", "").strip()
        if not prompt:
            raise web.HTTPBadRequest(text="?prompt= is required")
        events = allm.stream_generate(engine, allm.request([allm.user(prompt)]))  # cold: nothing sent yet
        return await push_events(request, events)  # subscribes, pushes, disposes when the client leaves

    app = web.Application()
    app.router.add_get("/chat", chat)
    return app


def demo_engine() -> allm.Engine:
    """OpenAI when OPENAI_API_KEY is set, else a Fake that types slowly."""
    if os.environ.get("OPENAI_API_KEY"):
        return allm.Engine(adapter="openai", model="gpt-4.1-mini")
    words = ["Hello", " from", " the", " Fake", " adapter,", " one", " word", " at", " a", " time."]
    script = [step for word in words for step in (("delay", 0.1), ("text", word))]
    return allm.Engine(adapter="fake", adapter_opts={"script": [*script, ("finish", "stop")]})


if __name__ == "__main__":
    web.run_app(make_app(demo_engine()), host="127.0.0.1", port=8080, handler_cancellation=True)
