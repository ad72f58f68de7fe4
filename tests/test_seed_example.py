"""The seed's example and the README quick start, run from synchronous code."""

from __future__ import annotations

from reactivex import operators as ops

import rx_allm as allm
from rx_allm.events import MessageCompleted, MessageStarted, TextCompleted, TextDelta
from rx_allm.models import Message

SCRIPT = [("text", "hi"), ("finish", "stop")]


def test_seed_example_stream_to_list() -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": SCRIPT})
    events = allm.stream_generate(engine, allm.request([allm.user("say hi")])).pipe(ops.to_list()).run()
    assert [e.type for e in events] == [
        "message_started",
        "text_delta",
        "text_completed",
        "message_completed",
    ]
    completed = [e for e in events if isinstance(e, MessageCompleted)]
    meta = {"provider": "fake", "native_finish_reason": "stop"}
    assert completed == [
        MessageCompleted(message=Message(role="assistant", content="hi"), finish_reason="stop", metadata=meta)
    ]
    assert events == [
        MessageStarted(metadata={"provider": "fake"}),
        TextDelta(id="text_1", delta="hi"),
        TextCompleted(id="text_1", text="hi"),
        completed[0],
    ]


def test_seed_example_with_the_adapter_class() -> None:
    engine = allm.Engine(adapter=allm.providers.Fake, adapter_opts={"script": SCRIPT})
    events = (
        allm.stream_generate(
            engine, allm.request([allm.system("be brief"), allm.user("say hi")], max_tokens=64)
        )
        .pipe(ops.to_list())
        .run()
    )
    assert events[-1].type == "message_completed"
    assert events[-1].message.text == "hi"


def test_readme_quick_start() -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", "hi"), ("finish", "stop")]})
    response = allm.generate_sync(engine, allm.request([allm.user("say hi")]))
    assert response.output_text == "hi"
    assert response.finish_reason == "stop"
    assert response.ok
    assert response.message == Message(role="assistant", content="hi")
