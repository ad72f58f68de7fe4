"""A provider emulator: a real aiohttp server on 127.0.0.1 speaking four streaming APIs.

One server answers every provider route with scripted :class:`Reply` objects rendered by
:mod:`rx_allm.testing.wire`:

=============================================================  ============  ====================
route (POST)                                                   provider      client ``base_url``
=============================================================  ============  ====================
``/v1/chat/completions``                                       ``openai``    ``<url>/v1``
``/v1/responses``                                              ``responses`` ``<url>/v1``
``/v1/messages``                                               ``anthropic`` ``<url>``
``/v1beta/models/{model}:streamGenerateContent?alt=sse``       ``gemini``    ``<url>``
``/openai/deployments/{name}/chat/completions`` (Azure)        ``openai``    ``<url>``
``/openai/deployments/{name}/responses`` (Azure)               ``responses`` ``<url>``
=============================================================  ============  ====================

Each request is recorded (:attr:`ProviderEmulator.requests`) before any fault is applied,
then checked the way the real API checks it (:mod:`rx_allm.testing.rules`: tool results
answer earlier calls; thinking blocks, reasoning items and thought signatures the emulator
handed out come back as the API requires): a body the real API would refuse gets the
provider's 400 error body and takes no reply (``validate=False`` turns the checks off).
Otherwise it takes the next queued reply (FIFO), else ``responder(request)``, else ``default``.
Faults (HTTP errors, slow headers, stalls, in-band errors, truncation, malformed or
invalid UTF-8 frames, TCP resets, random re-chunking) are fields of the reply and count
SSE events already written. A client going away is recorded as a :class:`Disconnect`
promptly: the server runs with ``handler_cancellation=True``, so the handler is cancelled
the moment the connection drops, even while it stalls or delays its headers.

Use it from async code (``async with ProviderEmulator(...) as emu``) or from sync code
(``with ProviderEmulator(...).running() as emu``, which serves from a daemon thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from aiohttp import web
from multidict import CIMultiDict

from rx_allm.testing.rules import Issued, refusal
from rx_allm.testing.wire import (
    REQUEST_ID_HEADERS,
    Frame,
    Renderer,
    Reply,
    ToolCallSpec,
    error_body,
    renderer,
    split_frames,
)

__all__ = ["Disconnect", "ProviderEmulator", "RecordedRequest", "Reply", "ToolCallSpec"]

_ROUTES: Final = {"/v1/chat/completions": "openai", "/v1/responses": "responses", "/v1/messages": "anthropic"}
_GEMINI_ROUTE: Final = re.compile(r"/v1beta/models/(?P<model>[^/:]+):streamGenerateContent")
_AZURE_ROUTE: Final = re.compile(r"/openai/deployments/[^/]+/(?P<endpoint>chat/completions|responses)")
_STALL: Final = object()  # plan markers between byte chunks
_RESET: Final = object()
_INVALID_MARK: Final = "@@invalid-utf8@@"
_INVALID_BYTES: Final = b"\xff\xfe\xc3("  # never valid UTF-8
_MAX_REQUEST_BYTES: Final = 64 * 1024 * 1024
_STOP_TIMEOUT: Final = 1.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the emulator received it (recorded before any fault)."""

    index: int
    path: str
    provider: str  # "openai" | "responses" | "anthropic" | "gemini"
    headers: dict[str, str]  # lower-cased names
    json: Any  # parsed body, None when it was not JSON
    time: float  # time.monotonic()
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Disconnect:
    """The client closed the connection before the body was complete."""

    request_index: int
    time: float  # time.monotonic() when the server noticed


def _json_response(status: int, error: dict[str, Any]) -> web.Response:
    return web.json_response({"error": error}, status=status)


class ProviderEmulator:
    """Serve scripted replies in the four providers' wire formats on 127.0.0.1.

    ``requests`` lists every request to a provider route (unknown routes get a 404 JSON
    and are not recorded); ``disconnects`` the requests whose client went away before the
    body was complete (a server-side stop or reset is not a disconnect); ``completed`` the
    indexes whose response, error responses included, was written to its scripted end.
    ``issued`` holds the continuation tokens handed out so far (checked when ``validate``).
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        default: Reply | None = None,
        responder: Callable[[RecordedRequest], Reply] | None = None,
        validate: bool = True,
    ) -> None:
        self._queue: deque[Reply] = deque(replies)
        self.default = default
        self.responder = responder
        self.validate = validate
        self.issued = Issued()
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self.disconnects: list[Disconnect] = []
        self.completed: list[int] = []
        self._runner: web.AppRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._thread: tuple[threading.Thread, asyncio.AbstractEventLoop] | None = None
        self._changed = threading.Condition()  # notified when a request, disconnect or completion is recorded

    # ---- scripting and inspection --------------------------------------------------------

    def base_url(self, provider: str) -> str:
        """The ``base_url`` a client for ``provider`` should use."""
        if provider in ("openai", "responses"):
            return self.url + "/v1"
        if provider in ("anthropic", "gemini"):
            return self.url
        raise ValueError(f"unknown provider {provider!r}")

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one (FIFO)."""
        self._queue.extend(replies)

    def posts(self, path_suffix: str | None = None) -> int:
        """How many requests arrived (only those whose path ends with ``path_suffix``)."""
        return sum(1 for r in self.requests if path_suffix is None or r.path.endswith(path_suffix))

    async def wait_for_disconnects(self, n: int, timeout: float = 2.0) -> None:
        """Wait until at least ``n`` disconnects were recorded; raise TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.disconnects) < n:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"saw {len(self.disconnects)} disconnect(s), expected {n}")
            await asyncio.sleep(0.002)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        """Block this thread until ``predicate()`` (over what the emulator recorded) holds; it is
        re-checked at each new record. Raise TimeoutError after ``timeout``. For sync tests with an
        emulator served from its own thread (``with emulator.running():``), never on its loop."""
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError("the emulator did not record what was awaited in time")

    def _record(self, records: list[Any], item: Any) -> None:
        with self._changed:
            records.append(item)
            self._changed.notify_all()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on an OS-assigned port of 127.0.0.1 and set :attr:`url`."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=_STOP_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._stopping = runner, False
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Stop serving; stalled or slow handlers are cancelled (not recorded as disconnects)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping = True
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=_STOP_TIMEOUT)
        await runner.cleanup()

    async def __aenter__(self) -> ProviderEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> None:
        """Serve from a new event loop in a daemon thread (for sync code, CLIs, benchmarks)."""
        if self._thread is not None:
            raise RuntimeError("emulator thread already running")
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=serve, name="ProviderEmulator", daemon=True)
        thread.start()
        started.result(timeout=10)
        self._thread = (thread, loop)

    def stop_thread(self) -> None:
        """Stop a server started by :meth:`start_in_thread` and join its thread."""
        if self._thread is None:
            return
        thread, loop = self._thread
        self._thread = None
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    @contextlib.contextmanager
    def running(self) -> Iterator[ProviderEmulator]:
        """``with emulator.running():`` serve from a daemon thread for the block's duration."""
        self.start_in_thread()
        try:
            yield self
        finally:
            self.stop_thread()

    # ---- serving ---------------------------------------------------------------------------

    def _next_reply(self, request: RecordedRequest) -> Reply:
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        return self.default or Reply()

    def _disconnected(self, index: int) -> None:
        if not self._stopping and all(d.request_index != index for d in self.disconnects):
            self._record(self.disconnects, Disconnect(index, time.monotonic()))

    def _route(self, path: str) -> str | None:
        if _GEMINI_ROUTE.fullmatch(path):
            return "gemini"
        azure = _AZURE_ROUTE.fullmatch(path)
        if azure:
            return "openai" if azure["endpoint"] == "chat/completions" else "responses"
        return _ROUTES.get(path)

    def _reply_for(self, record: RecordedRequest) -> Reply:
        refused = refusal(record.provider, record.json, self.issued) if self.validate else None
        if refused is not None:
            return Reply(status=refused.status, error_body=refused.body)
        return self._next_reply(record)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        gemini = _GEMINI_ROUTE.fullmatch(request.path)
        provider = self._route(request.path)
        if provider is None:
            return _json_response(404, {"message": f"no route for {request.path}", "type": "not_found"})
        if request.method != "POST":
            return _json_response(405, {"message": f"{request.method} not allowed", "type": "invalid_method"})
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        record = RecordedRequest(
            len(self.requests), request.path, provider, headers, body, time.monotonic(), dict(request.query)
        )
        self._record(self.requests, record)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            try:
                reply = self._reply_for(record)
            except Exception as exc:  # a broken responder must not crash the server
                return _json_response(
                    500, {"message": f"responder failed: {exc!r}", "type": "emulator_error"}
                )
            return await self._serve(request, record, reply, gemini["model"] if gemini else None)
        except asyncio.CancelledError:
            self._disconnected(record.index)
            raise
        finally:
            self._handlers.discard(task)

    async def _serve(
        self, request: web.Request, record: RecordedRequest, reply: Reply, model: str | None
    ) -> web.StreamResponse:
        r = renderer(record.provider, reply, record.json, seed=record.index, model=model)
        error = reply.status >= 400
        headers: CIMultiDict[str] = CIMultiDict()
        headers[REQUEST_ID_HEADERS[record.provider]] = r.new_id("req_", 24)
        headers["Content-Type"] = reply.content_type or ("application/json" if error else "text/event-stream")
        if not error:
            headers["Cache-Control"] = "no-cache"
        headers.update(reply.headers)
        if reply.header_delay > 0:
            await asyncio.sleep(reply.header_delay)
        if error:
            response: web.StreamResponse = web.Response(
                status=reply.status, headers=headers, body=self._error_bytes(reply, record, r.model)
            )
            plan: list[object] = []
        else:
            bodiless = reply.status < 200 or reply.status in (204, 304)
            response = web.StreamResponse(status=reply.status, headers=headers)
            plan = [] if bodiless else self._plan(reply, r)
            self.issued.merge(r.issued)
        try:
            await response.prepare(request)
            for i, step in enumerate(plan):
                if i and reply.chunk_delay > 0:
                    await asyncio.sleep(reply.chunk_delay)
                if step is _STALL:
                    await asyncio.get_running_loop().create_future()  # until cancelled
                elif step is _RESET:
                    _reset(request)
                    return response
                else:
                    assert isinstance(step, bytes)
                    await response.write(step)
            if reply.tail_delay > 0 and plan:
                await asyncio.sleep(reply.tail_delay)
            await response.write_eof()
        except ConnectionResetError:
            self._disconnected(record.index)
            return response
        self._record(self.completed, record.index)
        return response

    @staticmethod
    def _error_bytes(reply: Reply, record: RecordedRequest, model: str) -> bytes:
        body = reply.error_body
        if body is None:
            bearer = record.headers.get("authorization", "").removeprefix("Bearer ")
            key = record.headers.get("x-api-key") or record.headers.get("x-goog-api-key") or bearer
            return error_body(record.provider, reply.status, model=model, api_key=key)
        if isinstance(body, dict):
            return json.dumps(body).encode()
        return body.encode() if isinstance(body, str) else body

    @staticmethod
    def _plan(reply: Reply, r: Renderer) -> list[object]:
        """The body as byte chunks with stall/reset markers, faults applied, frames encoded in order."""
        frames: list[Frame | bytes] = [*r.frames()] if reply.body is None else [*split_frames(reply.body)]
        plan: list[object] = []
        for i in range(len(frames) + 1):
            if reply.malformed_after == i:
                plan.append(r.encode(Frame("{not json", r.delta_event)))
            if reply.invalid_utf8_after == i:
                plan.append(
                    r.encode(r.text_frame(_INVALID_MARK)).replace(_INVALID_MARK.encode(), _INVALID_BYTES)
                )
            if reply.error_after == i:
                plan.append(r.encode(r.error_frame(reply.error_type)))
                break
            if reply.truncate_after == i:
                break
            if reply.stall_after == i or reply.reset_after == i:
                plan.append(_STALL if reply.stall_after == i else _RESET)
                break
            if i < len(frames):
                plan.append(r.encode(frames[i]))
        return plan if reply.rechunk_seed is None else _rechunk(plan, reply.rechunk_seed, reply.max_chunk)


def _rechunk(plan: list[object], seed: int, max_chunk: int) -> list[object]:
    """Re-cut each run of bytes at seeded random positions into chunks of 1..max_chunk bytes."""
    rng = random.Random(seed)
    out: list[object] = []
    run: list[bytes] = []
    for step in [*plan, None]:
        if isinstance(step, bytes):
            run.append(step)
            continue
        data, start = b"".join(run), 0
        while start < len(data):
            size = rng.randint(1, max(1, max_chunk))
            out.append(data[start : start + size])
            start += size
        run = []
        if step is not None:
            out.append(step)
    return out


def _reset(request: web.Request) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), not a clean FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
