"""Fan one generation out to several sinks with ``publish()`` + ``connect()``: one request, four consumers.

``stream_generate`` is cold: every subscription is a new request (and a new bill).
``ops.publish()`` turns it into a ``ConnectableObservable``: the sinks subscribe first,
then ``connect()`` sends the one POST and every sink sees the same events.

* the UI gets the text deltas as they arrive;
* a logger gets one record per event, and the error if the stream fails;
* a usage meter adds up the usage chunks;
* a tool-call assembler keeps the completed tool calls.

Run it (no key needed: it starts the provider emulator, which answers over real HTTP)::

    python examples/fan_out.py
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reactivex import ConnectableObservable, Observable
from reactivex import operators as ops

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply, ToolCallSpec

log = logging.getLogger("fan_out")
E = TypeVar("E", bound=allm.Event)
WEATHER = allm.tool(
    name="get_weather",
    description="Current weather for a city",
    schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@dataclass
class UsageMeter:
    """Token totals over every generation it has seen."""

    input_tokens: int = 0
    output_tokens: int = 0
    generations: int = 0

    def add(self, usage: allm.Usage) -> None:
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.generations += 1


@dataclass
class Sinks:
    """Where the events went."""

    ui: list[str] = field(default_factory=list)
    meter: UsageMeter = field(default_factory=UsageMeter)
    tool_calls: list[allm.ToolCall] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.ui)


def of_type(kind: type[E]) -> Callable[[Observable[allm.Event]], Observable[E]]:
    """Keep the events of one class."""

    def keep(events: Observable[allm.Event]) -> Observable[E]:
        kept: Observable[Any] = events.pipe(ops.filter(lambda event: isinstance(event, kind)))
        return kept

    return keep


def ignore(error: Exception) -> None:
    """For sinks that leave failures to the logger: a subscriber without ``on_error`` would
    have reactivex re-raise the error inside the shared delivery."""


def fan_out(events: Observable[allm.Event], sinks: Sinks) -> ConnectableObservable[allm.Event]:
    """Subscribe every sink to one shared stream; nothing is sent until ``connect()``."""
    shared: ConnectableObservable[allm.Event] = ops.publish()(events)
    shared.pipe(of_type(allm.TextDelta)).subscribe(lambda e: sinks.ui.append(e.delta), ignore)
    shared.subscribe(
        on_next=lambda e: log.info("event %s", e.type),
        on_error=lambda error: log.warning("generation failed: %r", error),
    )
    shared.pipe(of_type(allm.RawChunk)).subscribe(
        lambda e: sinks.meter.add(e.data) if isinstance(e.data, allm.Usage) else None, ignore
    )
    shared.pipe(of_type(allm.ToolCallCompleted)).subscribe(
        lambda e: sinks.tool_calls.append(
            allm.ToolCall(id=e.id, name=e.name, arguments=e.arguments, raw_arguments=e.raw_arguments)
        ),
        ignore,
    )
    return shared


async def run(engine: allm.Engine, prompt: str) -> Sinks:
    """One generation fanned out to the sinks; returns when it ended (a failure is logged)."""
    sinks = Sinks()
    shared = fan_out(allm.stream_generate(engine, allm.request([allm.user(prompt)], tools=[WEATHER])), sinks)
    ended = asyncio.get_running_loop().create_future()
    shared.subscribe(on_error=lambda _: ended.set_result(None), on_completed=lambda: ended.set_result(None))
    subscription = shared.connect()  # the one request
    try:
        await ended
    finally:
        if subscription is not None:
            subscription.dispose()
    return sinks


async def main() -> None:
    reply = Reply(
        text="Let me check the weather in Paris.",
        tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})],
        finish="tool_calls",
        chunk_delay=0.05,
    )
    async with ProviderEmulator(default=reply) as emulator:
        engine = allm.Engine(
            adapter="openai",
            adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "emulator-key"},
            model="gpt-4.1-mini",
        )
        sinks = await run(engine, "What's the weather in Paris?")
        print(f"ui:    {sinks.text}")
        print(f"tools: {[(c.name, c.arguments) for c in sinks.tool_calls]}")
        print(f"usage: {sinks.meter}")
        print(f"POSTs received by the emulator: {emulator.posts()}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="log:   %(message)s")
    asyncio.run(main())
