"""The conversation a browser request starts: the chat events to frame, and what to show about it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reactivex import Observable

from rx_allm.engine import Engine
from rx_allm.orchestration import Thread, stream_chat


def chat_events(
    engine: Engine, thread: Thread, tools: Sequence[Any], opts: dict[str, Any]
) -> Observable[Any]:
    """The chat events of the reply to ``thread`` (pre-flight errors raise here, before any I/O).

    Raw chunks pass unless the caller says otherwise: reasoning arrives as one.
    """
    return stream_chat(engine, thread, tools=tools, **{"include_raw_chunks": True, **opts})


def describe(engine: Engine, opts: dict[str, Any]) -> dict[str, Any]:
    """The provider and model a reply comes from (shown by the chat page)."""
    adapter = engine.resolve_adapter()
    provider = getattr(adapter, "name", None) or type(adapter).__name__
    return {"provider": provider, "model": opts.get("model") or engine.model}
