"""The model requests of one chat: the first resolved by the pre-flight, the later ones derived from it.

Every step of a chat is the same call over a longer thread, so the pre-flight
(:func:`~rx_allm.preflight.prepare`: options, limits, adapter and parameter names, model)
runs once, when ``stream_chat`` is called; a later step swaps the messages in, takes the
engine's next call index and the request id ``<first id>-<n>`` (step *n*, from 2), and
checks the messages added since the first request. Each step streams through
:func:`~rx_allm.runner.open_stream`, as a ``stream_generate`` would, before its filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from reactivex import Observable

from rx_allm.adapter import StreamOptions
from rx_allm.conversation import Thread
from rx_allm.engine import Engine
from rx_allm.errors import ValidationError
from rx_allm.events import Event
from rx_allm.models import Request, Tool
from rx_allm.preflight import check_model, check_names, message_problems, prepare
from rx_allm.runner import OnEvent, open_stream


@dataclass(slots=True)
class StepRequests:
    """The resolved first request of a chat and how each step's generation is opened (never changed)."""

    engine: Engine
    adapter: Any
    request: Request
    opts: StreamOptions
    on_event: OnEvent | None

    @classmethod
    def prepare(
        cls,
        engine: Engine,
        thread: Thread,
        tools: Sequence[Tool],
        on_event: OnEvent | None,
        options: dict[str, Any],
    ) -> StepRequests:
        """Run the pre-flight of the chat's first request (raising :class:`ValidationError` & co)."""
        adapter = engine.resolve_adapter()
        resolved, opts = prepare(engine, Request(messages=thread.messages, tools=list(tools)), options)
        check_names(adapter, opts)
        check_model(adapter, resolved)
        return cls(engine, adapter, resolved, opts, on_event)

    def first(self) -> Observable[Event]:
        """The first step's generation (the adapter's pre-flight errors raise)."""
        return open_stream(self.adapter, self.request, self.opts, self.on_event)

    def request_id(self, number: int) -> str | None:
        """The request id of step ``number`` (from 1)."""
        first = self.opts.request_id
        return first if number == 1 else f"{first}-{number}"

    def step(self, thread: Thread, number: int) -> Observable[Event]:
        """Step ``number``'s generation (from 2) over ``thread`` (pre-flight errors raise)."""
        messages = thread.messages
        problems = message_problems(messages, start=len(self.request.messages))  # the rest passed already
        if problems:
            raise ValidationError("invalid_request", errors=problems)
        request = self.request.model_copy(update={"messages": messages})
        opts = replace(
            self.opts, call_index=self.engine.next_call_index(), request_id=self.request_id(number)
        )
        return open_stream(self.adapter, request, opts, self.on_event)


__all__ = ["StepRequests"]
