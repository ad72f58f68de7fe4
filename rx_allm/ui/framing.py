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
from json.encoder import encode_basestring
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc

from rx_allm.ui._encoder import Chunk, FrameEncoder

T = TypeVar("T")

#: The closing line of an AI SDK UI message stream.
SSE_DONE = b"data: [DONE]\n\n"


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def compact_json(chunk: Chunk) -> str:
    """``chunk`` as compact JSON, what ``json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))`` gives.

    A chunk whose values are all strings (every delta chunk: the hot path) is written
    directly, with the C string escaper; its keys are the protocols' own ASCII names.
    """
    try:
        return "{" + ",".join([f'"{key}":{encode_basestring(value)}' for key, value in chunk.items()]) + "}"
    except TypeError:  # a value that is not a string
        return _JSON(chunk)


def sse_data(chunk: Chunk) -> bytes:
    """One SSE frame: ``data: <compact JSON>`` and a blank line."""
    return f"data: {compact_json(chunk)}\n\n".encode()


#: Delta chunk types: ``type`` → (the key naming the block, the key holding the fragment).
DeltaKeys = dict[str, tuple[str, str]]


def frames(events: Observable[Any], encoder: Callable[[], FrameEncoder]) -> Observable[Chunk]:
    """The chunks of ``encoder`` (a factory, one encoder per subscription) for ``events``."""
    return _framed(events, encoder, lambda: _same, None)


def sse_frames(
    events: Observable[Any], encoder: Callable[[], FrameEncoder], deltas: DeltaKeys, done: bytes | None = None
) -> Observable[bytes]:
    """The same chunks as SSE frames (one operator, no second pass), then ``done`` when given.

    ``deltas`` names the protocol's delta chunks (``{type, <block key>, <fragment key>}``,
    in that order): their frames reuse one encoded head per block, the hot path of a stream.
    """
    return _framed(events, encoder, lambda: _delta_writer(deltas), done)


def _delta_writer(deltas: DeltaKeys) -> Callable[[Chunk], bytes]:
    heads: dict[tuple[str, str], str] = {}  # per subscription: one entry per block

    def write(chunk: Chunk) -> bytes:
        kind = chunk["type"]
        keys = deltas.get(kind)
        if keys is None or len(chunk) != 3:
            return sse_data(chunk)
        block_key, fragment_key = keys
        block = chunk[block_key]
        try:
            head = heads.get((kind, block))
            if head is None:
                head = heads[(kind, block)] = (
                    f'data: {{"type":"{kind}","{block_key}":{encode_basestring(block)},"{fragment_key}":'
                )
            return f"{head}{encode_basestring(chunk[fragment_key])}}}\n\n".encode()
        except (TypeError, KeyError):  # not the usual shape: the general writer
            return sse_data(chunk)

    return write


def _same(chunk: Chunk) -> Chunk:
    return chunk


def _framed(
    events: Observable[Any],
    encoder: Callable[[], FrameEncoder],
    writer: Callable[[], Callable[[Chunk], T]],
    done: T | None,
) -> Observable[T]:
    def subscribe(
        observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        walk = encoder()
        encode = writer()
        on_next = observer.on_next

        def send(chunks: list[Chunk]) -> None:
            for chunk in chunks:
                on_next(encode(chunk))

        def end(chunks: list[Chunk]) -> None:
            send(chunks)
            if done is not None:
                on_next(done)
            observer.on_completed()

        walk_event = walk.event

        def on_event(event: Any) -> None:
            for chunk in walk_event(event):
                on_next(encode(chunk))

        send(walk.opening())
        return events.subscribe(
            on_event,
            lambda error: end(walk.failed(error)),
            lambda: end(walk.completed()),
            scheduler=scheduler,
        )

    return reactivex.create(subscribe)
