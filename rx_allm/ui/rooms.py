"""Conversations of the chat app by chat id: the last request's messages and its generation.

A chat's reply runs in a :mod:`relay <rx_allm.relay>` generation: produced once, appended
to a log that any number of viewers read. The tab that sent the message is the first
viewer; a second tab (or a refresh) on the same chat id attaches with
``GET /api/chat/<id>/stream`` and gets the whole reply so far, then follows it live. A
viewer leaving never stops a reply: Stop is ``POST /api/chat/<id>/stop``, and a reply
nobody watches ends after the relay's ``idle_timeout`` (the app's ``linger``). A chat
keeps only its latest reply.

Where the room records live: :class:`MemoryRoomStore` (one process, at most ``keep``
chats) with a :class:`~rx_allm.relay.MemoryRelay`, :class:`RedisRoomStore` with a
:class:`~rx_allm.relay.RedisRelay`, so every worker process knows every chat.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from reactivex import Observable

from rx_allm.errors import ValidationError
from rx_allm.relay import MemoryRelay, Relay

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class Room:
    """One chat: the UI messages it was last sent, and the reply being generated for them."""

    messages: list[dict[str, Any]]
    generation_id: str
    message_id: str


class RoomStore(Protocol):
    """Where room records are kept."""

    async def get(self, chat_id: str) -> Room | None: ...

    async def put(self, chat_id: str, room: Room) -> None: ...


class MemoryRoomStore:
    """Room records in this process (the most recently used ``keep``)."""

    def __init__(self, keep: int = 200) -> None:
        self.keep = keep
        self._rooms: OrderedDict[str, Room] = OrderedDict()

    async def get(self, chat_id: str) -> Room | None:
        return self._rooms.get(chat_id)

    async def put(self, chat_id: str, room: Room) -> None:
        self._rooms.pop(chat_id, None)
        self._rooms[chat_id] = room
        while len(self._rooms) > self.keep:
            self._rooms.popitem(last=False)


class RedisRoomStore:
    """Room records in Redis (``<prefix>:chat:<chat id>``, JSON), kept ``ttl`` seconds."""

    def __init__(self, client: Redis, prefix: str = "rx_allm", ttl: float = 600.0) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    async def get(self, chat_id: str) -> Room | None:
        raw = await self.client.get(f"{self.prefix}:chat:{chat_id}")
        return None if raw is None else Room(**json.loads(raw))

    async def put(self, chat_id: str, room: Room) -> None:
        await self.client.set(
            f"{self.prefix}:chat:{chat_id}", json.dumps(asdict(room)), px=int(self.ttl * 1000)
        )


def memory_relay(linger: float) -> MemoryRelay:
    """The relay of a one-process app: a reply without viewers lives ``linger`` seconds."""
    return MemoryRelay(idle_timeout=linger, heartbeat_interval=min(1.0, linger / 2))


class Rooms:
    """The chats of one app: records in ``store``, replies in ``relay``."""

    def __init__(self, relay: Relay | None = None, store: RoomStore | None = None) -> None:
        self.relay: Relay = relay or MemoryRelay()
        self.store: RoomStore = store or MemoryRoomStore()

    async def start(self, chat_id: str, messages: list[dict[str, Any]], events: Observable[Any]) -> Room:
        """A new reply for ``chat_id`` (an older one still running is stopped)."""
        await self.stop(chat_id)
        room = Room(messages, f"reply-{secrets.token_hex(8)}", f"msg-{secrets.token_hex(6)}")
        await self.store.put(chat_id, room)
        await self.relay.start(room.generation_id, events)
        return room

    async def get(self, chat_id: str) -> Room | None:
        """The chat with this id, if kept."""
        return await self.store.get(chat_id)

    async def stop(self, chat_id: str) -> bool:
        """Stop the chat's running reply, wherever it runs; False if there was none."""
        room = await self.store.get(chat_id)
        if room is None:
            return False
        try:
            return await self.relay.stop(room.generation_id)
        except ValidationError:
            return False  # its log already expired

    async def close(self) -> None:
        """Stop the replies this process produces (server shutdown)."""
        await self.relay.close()
