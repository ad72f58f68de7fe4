"""The SSE demo back end: a page that streams raw rx_allm events over SSE (the pattern, by hand).

A browser posts a prompt, then watches the generation's events as Server-Sent Events;
several tabs watching one generation share a single provider request, and Stop or
closing the last tab cancels it. Modules: :mod:`~rx_allm.demo.push` (an Observable of
events pushed as SSE: the core of the pattern), :mod:`~rx_allm.demo.generations` (the
shared, replayed generations), :mod:`~rx_allm.demo.app` (routes and page),
:mod:`~rx_allm.demo.server` (serving).
"""

from rx_allm.demo.app import make_app
from rx_allm.demo.push import push_events
from rx_allm.demo.server import serve, start, url_of

__all__ = ["make_app", "push_events", "serve", "start", "url_of"]
