"""Conversations of the chat app by chat id: the last request's messages and its generation.

A generation is a :class:`~rx_allm.demo.generations.Generation`: one upstream request
replayed to any number of viewers, cancelled when the last viewer leaves. The tab that
sent the message is the first viewer; a second tab (or a refresh) on the same chat id
attaches with ``GET /api/chat/<id>/stream`` and gets the whole reply so far, then follows
it live. With ``linger``, a reply whose last viewer left keeps running that many seconds
for a viewer to come back (a refresh); Stop (``POST /api/chat/<id>/stop``) cancels it at
once. A chat keeps only its latest generation; at most ``keep`` chats are kept.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from reactivex import Observable

from rx_allm.demo.generations import Generation


@dataclass
class Room:
    """One chat: the UI messages it was last sent, and the reply being generated for them."""

    messages: list[dict[str, Any]]
    generation: Generation
    message_id: str


class Rooms:
    """The chats of one app (most recently used last)."""

    def __init__(self, keep: int = 200, linger: float = 0.0) -> None:
        self.keep = keep
        self.linger = linger
        self._rooms: OrderedDict[str, Room] = OrderedDict()

    def start(self, chat_id: str, messages: list[dict[str, Any]], events: Observable[Any]) -> Room:
        """A new generation for ``chat_id`` (an older one still running is stopped)."""
        old = self._rooms.pop(chat_id, None)
        if old is not None:
            old.generation.stop("a new message was sent")
        generation = Generation(secrets.token_urlsafe(9), chat_id, events, linger=self.linger)
        room = Room(messages, generation, f"msg-{secrets.token_hex(6)}")
        self._rooms[chat_id] = room
        while len(self._rooms) > self.keep:
            _, dropped = self._rooms.popitem(last=False)
            dropped.generation.stop("too many chats")
        return room

    def get(self, chat_id: str) -> Room | None:
        """The chat with this id, if kept."""
        return self._rooms.get(chat_id)

    def stop_all(self) -> None:
        """Stop every running generation (server shutdown)."""
        for room in self._rooms.values():
            room.generation.stop("server shutting down")
