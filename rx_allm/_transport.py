"""One HTTP streaming request as a cold Observable of events.

Nothing happens until subscription; each subscription sends exactly one POST
(never a second one: no redirects followed, no reconnection, no retry). The
response status and content type are checked before decoding; an error body is
read and classified. Bytes go through the library's :class:`~rx_allm._sse.SSEDecoder`
and the provider's mapper (a :class:`Mapper`, in practice an :class:`~rx_allm.adapter.StreamMapper`).

Timing: ``request_timeout`` bounds the wait for the response headers and
``stream_timeout`` the gap between received bytes (keep-alive comments count);
either ends the stream with ``AdapterError("timeout")``. One timer per stream is
re-armed lazily, so the per-chunk cost is a float store. A deadline found passed is
decided one loop iteration later, once bytes already received (say while a slow
subscriber held the loop) have reached the reader: only a real gap is a timeout.

Disposal (from any thread) cancels the task and closes the response — and its
connection — synchronously on the loop, so the server sees the close at once.
Events are delivered on the loop the subscription runs on (see :mod:`rx_allm._loop`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rx_allm._classify import ErrorDialect, http_error
from rx_allm._connections import session_for_loop
from rx_allm._loop import call_on_loop, loop_for_subscription, refuse_blocking_run
from rx_allm._sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder, SSEEvent
from rx_allm.errors import AdapterError, RxAllmError, StreamError
from rx_allm.events import Event

logger = logging.getLogger("rx_allm")

_MAX_ERROR_BODY = 1 << 20
# Reads return whatever is buffered, up to this much: a socket read can hold 256 KiB, and
# decoding, mapping and delivering it in 16 KiB steps keeps the objects in flight in the CPU
# caches (about a third faster per chunk on a busy stream; no effect on latency).
_READ_SIZE = 1 << 14
# After the terminal marker, the body's last bytes (the end of the chunked encoding) are
# read for at most this long, so the connection returns to the pool instead of closing.
_TAIL_SECONDS = 0.25
_TAIL_BYTES = 1 << 16
_running: set[asyncio.Task[None]] = set()


class Mapper(Protocol):
    """What the transport needs of a provider's stream mapper (see :class:`~rx_allm.adapter.StreamMapper`)."""

    finished: bool  # message_completed was emitted: stop reading

    def start(self) -> None:
        """The response is an SSE stream."""

    def feed(self, event: SSEEvent) -> None:
        """Map one SSE event (raising for an in-band failure)."""

    def end(self) -> None:
        """The body ended (raising when it was truncated)."""


@dataclass(frozen=True, slots=True)
class HttpCall:
    """Everything needed to send one provider request and read its stream."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(repr=False)
    new_mapper: Callable[[Callable[[Event], None]], Mapper]
    dialect: ErrorDialect
    stream_timeout: float = 60.0
    request_timeout: float = 60.0
    total_timeout: float | None = None
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    session: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def provider(self) -> str:
        return self.dialect.provider


def http_stream(call: HttpCall) -> Observable[Event]:
    """A cold Observable: each subscription performs ``call`` once."""

    def subscribe(
        observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        refuse_blocking_run(scheduler)
        stream = _HttpStream(call, observer, loop_for_subscription())
        call_on_loop(stream.loop, stream.start)
        return Disposable(stream.dispose)

    return reactivex.create(subscribe)


class _SubscriberFailed(Exception):
    """The subscriber's own callback raised; the stream stops (see :meth:`_HttpStream._subscriber_failed`)."""


class _HttpStream:
    """One subscription's request, lifecycle and timers (touched only on its loop)."""

    def __init__(
        self, call: HttpCall, observer: abc.ObserverBase[Event], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.call = call
        self.observer = observer
        self.loop = loop
        self.task: asyncio.Task[None] | None = None
        self.response: aiohttp.ClientResponse | None = None
        self.out: list[Event] = []
        self.ended = False  # a terminal notification was sent, or the subscription was disposed
        self.timeout_error: AdapterError | None = None
        self.timer: asyncio.Handle | None = None
        self.receiving = False  # headers arrived: the stream timeout applies
        self.last_activity = 0.0
        self.deadline: float | None = None  # total_timeout's, on the loop's clock
        self.request_deadline = 0.0
        self.reading_tail = False  # completed: only the body's tail is being read, for reuse

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        if self.ended:
            return
        self.task = self.loop.create_task(self._run())
        _running.add(self.task)
        self.task.add_done_callback(_running.discard)
        now = self.loop.time()
        self.request_deadline = now + self.call.request_timeout
        if self.call.total_timeout is not None:
            self.deadline = now + self.call.total_timeout
        self.timer = self.loop.call_at(self._due()[0], self._check_timer)

    def dispose(self) -> None:
        call_on_loop(self.loop, self._cancel)

    def _cancel(self) -> None:
        self.ended = True
        if self.reading_tail:  # completed already; the bounded tail read releases the connection
            return
        self._release(close=True)
        task = self.task
        if task is not None and task is not asyncio.current_task(self.loop):
            task.cancel()

    def _release(self, close: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        response, self.response = self.response, None
        if response is not None:
            if close:
                response.close()
            else:
                response.release()

    # -- timers ----------------------------------------------------------------
    def _rearm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None if self.ended else self.loop.call_at(when, self._check_timer)

    def _due(self) -> tuple[float, str]:
        """The next deadline on the loop's clock, and which limit it is."""
        if self.receiving:
            due, limit = self.last_activity + self.call.stream_timeout, "stream_timeout"
        else:
            due, limit = self.request_deadline, "request_timeout"
        if self.deadline is not None and self.deadline <= due:
            return self.deadline, "total_timeout"
        return due, limit

    def _check_timer(self, confirm: bool = False) -> None:
        self.timer = None
        if self.ended:
            return
        due, limit = self._due()
        if self.loop.time() < due:
            self.timer = self.loop.call_at(due, self._check_timer)
            return
        if not confirm:  # the I/O of this iteration (processed before timers) wakes the reader first
            self.timer = self.loop.call_soon(self._check_timer, True)
            return
        label = self.call.dialect.label
        if limit == "total_timeout":
            message = f"the {label} stream did not end within {self.call.total_timeout:g}s (total_timeout)"
        elif limit == "stream_timeout":
            message = f"no data from {label} for {self.call.stream_timeout:g}s (stream_timeout)"
        else:
            message = f"no response headers from {label} within {self.call.request_timeout:g}s"
        self.timeout_error = AdapterError("timeout", message, provider=self.call.provider)
        if self.task is not None:
            self.task.cancel()

    # -- the exchange ----------------------------------------------------------
    async def _run(self) -> None:
        error: RxAllmError | None = None
        clean = cancelled = False
        try:
            await self._exchange()
            clean = True
        except asyncio.CancelledError:
            if self.ended:
                return  # disposed
            # Not by us: the loop is shutting down (``asyncio.run`` returning) or someone
            # cancelled the task. The subscriber still gets a terminal notification.
            cancelled = self.timeout_error is None
            error = self.timeout_error or StreamError(
                "cancelled",
                f"the {self.call.dialect.label} stream's task was cancelled (its event loop shut down?)",
                provider=self.call.provider,
            )
        except _SubscriberFailed:
            return
        except RxAllmError as exc:
            error = exc
        except (aiohttp.ClientError, OSError) as exc:
            error = _transport_error(self.call, exc, self.receiving)
        except Exception as exc:  # a mapper bug must still end the stream with a typed error
            logger.exception("rx_allm: unexpected failure while streaming from %s", self.call.provider)
            error = StreamError.wrap(exc, self.call.provider)
        finally:
            if not clean:
                self._release(close=True)
        self.reading_tail = clean
        try:
            self._deliver()
            self._terminate(error)
        except _SubscriberFailed:
            pass
        if clean:
            await self._read_tail()
        elif cancelled:
            raise asyncio.CancelledError

    async def _read_tail(self) -> None:
        """Read what is left of a completed body (normally nothing) so the connection is reused."""
        response = self.response
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if response is None:
            return
        content = response.content
        try:
            async with asyncio.timeout(_TAIL_SECONDS):
                left = _TAIL_BYTES
                while left > 0 and not content.at_eof():
                    chunk = await content.readany()
                    if not chunk:
                        break
                    left -= len(chunk)
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        finally:
            self.response = None
            if content.at_eof():
                response.release()
            else:
                response.close()

    async def _post(self) -> aiohttp.ClientResponse:
        """Send the request (once: never again, whatever happens to it)."""
        call = self.call
        session = call.session or await session_for_loop()
        # One loop iteration first: a pooled connection the server closed while it sat idle,
        # whose close the loop has not read yet (it was busy), is then marked closed and
        # left out of the pool, instead of carrying this request into a closed socket.
        await asyncio.sleep(0)
        return await session.post(
            call.url,
            data=call.body,
            headers=call.headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=None),  # the request timer bounds connect and headers
        )

    async def _exchange(self) -> None:
        call = self.call
        response = await self._post()
        self.response = response
        self.receiving = True
        self.last_activity = self.loop.time()
        self._rearm(self._due()[0])  # the request timer may be due much later
        if response.status >= 300:
            body = await _read_capped(response.content, _MAX_ERROR_BODY)
            raise http_error(call.dialect, response.status, body, response.headers)
        content_type = response.headers.get("Content-Type", "")
        if "text/event-stream" not in content_type.lower():
            raise AdapterError(
                "malformed_response",
                f"{call.dialect.label} answered {content_type or 'no content type'}, not an event stream",
                provider=call.provider,
                status=response.status,
            )
        mapper = call.new_mapper(self.out.append)
        decoder = SSEDecoder(call.max_event_bytes, provider=call.provider)
        loop = self.loop
        mapper.start()
        async for chunk in response.content.iter_chunked(_READ_SIZE):
            self.last_activity = loop.time()
            for event in decoder.feed(chunk):
                mapper.feed(event)
                if mapper.finished:
                    break
            if self.out:
                self._deliver()
            if mapper.finished or self.ended:
                break
            decoder.check()  # an invalid line that followed this chunk's events
        else:
            decoder.check()
            mapper.end()

    # -- delivery --------------------------------------------------------------
    def _deliver(self) -> None:
        out = self.out
        try:
            for event in out:
                if self.ended:
                    break
                self.observer.on_next(event)
        except Exception as exc:
            self._subscriber_failed(exc)
        finally:
            out.clear()

    def _terminate(self, error: RxAllmError | None) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            if error is None:
                self.observer.on_completed()
            else:
                self.observer.on_error(error)
        except Exception as exc:
            self._subscriber_failed(exc)

    def _subscriber_failed(self, exc: Exception) -> None:
        """A subscriber's callback raised: the request stops, and the exception becomes the terminal
        ``on_error`` (as ``do_action``'s do), so the other sinks of a shared stream end too."""
        delivered = False
        if not self.ended:
            self.ended = True
            try:
                self.observer.on_error(exc)
                delivered = True
            except Exception:  # its on_error raised as well (or there is none): nothing left to tell
                pass
        if not delivered:
            logger.error(
                "rx_allm: a subscriber of a %s stream raised; stream stopped",
                self.call.provider,
                exc_info=exc,
            )
        raise _SubscriberFailed from exc


async def _read_capped(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The body up to ``limit`` bytes (``StreamReader.read(n)`` returns only what is buffered)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _transport_error(call: HttpCall, exc: BaseException, receiving: bool) -> AdapterError:
    where = "mid-stream" if receiving else "before the response"
    return AdapterError(
        "network_error",
        f"transport failure {where} ({call.dialect.label}): {type(exc).__name__}: {exc}",
        provider=call.provider,
        cause=exc,
    )


__all__ = ["HttpCall", "Mapper", "http_stream"]
