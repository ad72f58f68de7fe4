"""Fan-out with a failing sink: when one sink's ``on_next`` raises, every other sink still ends.

``publish()`` shares one subscription among the sinks; the exception of one sink reaches the
source, which stops the request and delivers that exception as the stream's ``on_error`` to
every sink (as ``on_event``'s exceptions are delivered). ``collect``/``to_future`` on the
healthy sinks therefore return instead of waiting forever. Over the emulator (HTTP) and the
Fake (no network), and for the recipes the documentation shows.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from reactivex import ConnectableObservable
from reactivex import operators as ops

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply

WAIT = 10.0


class SinkFailed(Exception):
    pass


def fail_on_second_delta() -> Any:
    seen: list[str] = []

    def on_next(event: allm.Event) -> None:
        if isinstance(event, allm.TextDelta):
            seen.append(event.delta)
            if len(seen) == 2:
                raise SinkFailed("the logger sink broke")

    return on_next


def engines(emulator: ProviderEmulator) -> dict[str, allm.Engine]:
    script = [("text", "one"), ("text", " two"), ("text", " three"), ("finish", "stop")]
    return {
        "openai": allm.Engine(
            adapter="openai",
            model="gpt-4o-mini",
            adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "sk-fanout-0123456789"},
        ),
        "fake": allm.Engine(adapter="fake", adapter_opts={"script": script}),
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("adapter", ["openai", "fake"])
@pytest.mark.parametrize("position", ["first", "middle", "last"])
async def test_healthy_sinks_end_when_one_sink_raises(adapter: str, position: str, caplog: Any) -> None:
    async with ProviderEmulator(default=Reply(text="one two three four")) as emulator:
        shared: ConnectableObservable[allm.Event] = ops.publish()(
            allm.stream_generate(engines(emulator)[adapter], allm.request([allm.user("hi")]))
        )
        futures: list[asyncio.Future[Any]] = []
        collected: list[asyncio.Task[allm.Response]] = []
        failing_errors: list[Exception] = []

        def add_healthy() -> None:
            futures.append(shared.pipe(ops.to_list(), ops.to_future()))
            collected.append(asyncio.ensure_future(allm.collect(shared)))

        def add_failing() -> None:
            shared.subscribe(on_next=fail_on_second_delta(), on_error=failing_errors.append)

        order = {"first": [add_failing, add_healthy], "middle": [add_healthy, add_failing, add_healthy]}
        for add in order.get(position, [add_healthy, add_failing]):
            add()
        await asyncio.sleep(0)  # the collect tasks subscribe
        with caplog.at_level(logging.ERROR, logger="rx_allm"):
            connection = shared.connect()
            _, pending = await asyncio.wait([*futures, *collected], timeout=WAIT)
        assert not pending, "a healthy sink never got its terminal notification"
        for future in futures:
            assert isinstance(future.exception(), SinkFailed)
        for task in collected:
            response = task.result()
            assert response.finish_reason == "error" and not response.ok
            assert isinstance(response.error, allm.StreamError) and response.error.reason == "unknown"
            assert isinstance(response.error.cause, SinkFailed)
        assert len(failing_errors) == 1 and isinstance(failing_errors[0], SinkFailed)
        if connection is not None:
            connection.dispose()
        if adapter == "openai":
            assert emulator.posts() == 1


def _load_example(name: str) -> Any:
    path = Path(__file__).parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.asyncio
async def test_the_fan_out_example_returns_when_a_sink_raises() -> None:
    fan_out = _load_example("fan_out")
    async with ProviderEmulator(default=Reply(text="one two three four")) as emulator:
        engine = engines(emulator)["openai"]
        original = fan_out.fan_out

        def with_failing_sink(events: Any, sinks: Any) -> Any:
            shared = original(events, sinks)
            shared.subscribe(on_next=fail_on_second_delta(), on_error=lambda error: None)
            return shared

        fan_out.fan_out = with_failing_sink
        sinks = await asyncio.wait_for(fan_out.run(engine, "hi"), WAIT)
    assert sinks.text.startswith("one")
    assert emulator.posts() == 1


@pytest.mark.asyncio
async def test_the_documented_recipe_ends_every_sink_when_one_raises() -> None:
    """docs/concepts/cancellation.md's fan-out, with a raising sink subscribed first."""
    async with ProviderEmulator(default=Reply(text="One request, three sinks.")) as emulator:
        shared = allm.stream_generate(engines(emulator)["openai"], allm.request([allm.user("hi")])).pipe(
            ops.publish()
        )
        shown: list[Any] = []
        shared.subscribe(on_next=fail_on_second_delta(), on_error=shown.append)
        shared.pipe(
            ops.filter(lambda event: isinstance(event, allm.TextDelta)),
            ops.map(lambda event: event.delta),
        ).subscribe(shown.append, on_error=shown.append)
        shared.pipe(ops.filter(lambda event: isinstance(event, allm.RawChunk))).subscribe(
            shown.append, on_error=shown.append
        )
        collector = allm.StreamCollector()
        shared.subscribe(on_next=collector.apply, on_error=collector.fail)
        finished = shared.pipe(ops.to_future())
        shared.connect()
        with pytest.raises(SinkFailed):
            await asyncio.wait_for(finished, WAIT)
    assert sum(isinstance(item, SinkFailed) for item in shown) == 3  # the failing sink, ui, meter
    assert collector.to_response().finish_reason == "error"
