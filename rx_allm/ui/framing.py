"""Running a :class:`~rx_allm.ui._encoder.FrameEncoder` as an operator, and SSE bytes.

``frames(events, encoder)`` is cold like its source: each subscription gets a fresh
encoder, the opening chunks at subscription, one list of chunks per event, and the
closing chunks at the end. The source's ``on_error`` becomes the protocol's error
chunks followed by ``on_completed`` (a browser needs a clean end, not a broken
connection). Disposing the frames disposes the source, which cancels the provider
request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rx_allm.ui._encoder import Chunk, FrameEncoder

#: The closing line of an AI SDK UI message stream.
SSE_DONE = b"data: [DONE]\n\n"


def frames(events: Observable[Any], encoder: Callable[[], FrameEncoder]) -> Observable[Chunk]:
    """The chunks of ``encoder`` (a factory, one encoder per subscription) for ``events``."""

    def subscribe(
        observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        walk = encoder()

        def send(chunks: list[Chunk]) -> None:
            for chunk in chunks:
                observer.on_next(chunk)

        def on_error(error: Exception) -> None:
            send(walk.failed(error))
            observer.on_completed()

        def on_completed() -> None:
            send(walk.completed())
            observer.on_completed()

        send(walk.opening())
        return events.subscribe(
            lambda event: send(walk.event(event)), on_error, on_completed, scheduler=scheduler
        )

    return reactivex.create(subscribe)


def sse_data(chunk: Chunk) -> bytes:
    """One SSE frame: ``data: <compact JSON>`` and a blank line."""
    return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def sse(chunks: Observable[Chunk], done: bytes | None = None) -> Observable[bytes]:
    """``chunks`` as SSE frames, then ``done`` (when given) before completing."""
    encoded = ops.map(sse_data)(chunks)
    if done is None:
        return encoded
    return reactivex.concat(encoded, reactivex.of(done))
