"""A separate process for the relay tests: produce, view or stop one generation over Redis.

    relay_worker.py produce <redis url> <generation id> <options json> <emulator url> [go at]
    relay_worker.py view    <redis url> <generation id> <options json> <after or -> [leave after N]
    relay_worker.py stop    <redis url> <generation id> <options json>

Each prints JSON lines on stdout: ``{"started": bool}`` / ``{"ended": true}`` (produce),
``{"id": ..., "event": {...}}`` per entry then ``{"end": "completed" | <error dict>}`` or
``{"left": N}`` (view), ``{"stopped": bool}`` (stop). ``go at`` is a ``time.time()`` to
wait for before starting (to race several producers).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import rx_allm as allm
from rx_allm.errors import RxAllmError
from rx_allm.iterate import iterate
from rx_allm.relay import RedisRelay

API_KEY = "sk-test-relay-0123456789"


def say(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


async def produce(relay: RedisRelay, generation_id: str, emulator_url: str, go_at: float | None) -> None:
    engine = allm.Engine(
        adapter="openai", adapter_opts={"base_url": emulator_url + "/v1", "api_key": API_KEY}
    )
    source = allm.stream_generate(engine, allm.request([allm.user("relay me")]), model="gpt-4o-mini")
    if go_at is not None:
        await asyncio.sleep(max(0.0, go_at - time.time()))
    started = await relay.start(generation_id, source)
    say({"started": started})
    if started:
        await relay.wait(generation_id)
        say({"ended": True})


async def view(relay: RedisRelay, generation_id: str, after: str | None, leave_after: int | None) -> None:
    seen = 0
    try:
        async with iterate(relay.observe(generation_id, after=after)) as entries:
            async for entry in entries:
                say({"id": entry.id, "event": entry.event.model_dump(mode="json")})
                seen += 1
                if seen == leave_after:
                    say({"left": seen})
                    return
    except RxAllmError as error:
        say({"end": error.to_dict()})
        return
    say({"end": "completed"})


async def main(argv: list[str]) -> None:
    command, url, generation_id, options = argv[0], argv[1], argv[2], json.loads(argv[3])
    relay = RedisRelay(url, **options)
    try:
        if command == "produce":
            await produce(relay, generation_id, argv[4], float(argv[5]) if len(argv) > 5 else None)
        elif command == "view":
            after = None if argv[4] == "-" else argv[4]
            await view(relay, generation_id, after, int(argv[5]) if len(argv) > 5 else None)
        elif command == "stop":
            say({"stopped": await relay.stop(generation_id)})
        else:
            raise SystemExit(f"unknown command {command!r}")
    finally:
        await relay.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
