"""rx_allm: LLM provider streams as cold ReactiveX Observables over aiohttp.

Quick start::

    import rx_allm as allm

    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", "hi"), ("finish", "stop")]})
    response = allm.generate_sync(engine, allm.request([allm.user("say hi")]))
    assert response.output_text == "hi"
"""

from rx_allm import providers
from rx_allm._connections import close_session
from rx_allm.adapter import StreamAdapter, StreamOptions
from rx_allm.collector import StreamCollector
from rx_allm.engine import Engine, register_adapter
from rx_allm.errors import AdapterError, EngineError, RxAllmError, StreamError, ValidationError
from rx_allm.events import (
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    parse_event,
)
from rx_allm.iterate import EventStream, iterate
from rx_allm.models import (
    Message,
    Request,
    Response,
    Tool,
    ToolCall,
    Usage,
    assistant,
    request,
    system,
    tool,
    tool_result,
    user,
)
from rx_allm.operators import coalesce_text
from rx_allm.runner import collect, generate, generate_sync, stream_generate

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "Engine",
    "EngineError",
    "Event",
    "EventStream",
    "Message",
    "MessageCompleted",
    "MessageStarted",
    "RawChunk",
    "Request",
    "Response",
    "RxAllmError",
    "StreamAdapter",
    "StreamCollector",
    "StreamError",
    "StreamOptions",
    "TextCompleted",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallCompleted",
    "ToolCallDelta",
    "ToolCallStarted",
    "Usage",
    "ValidationError",
    "__version__",
    "assistant",
    "close_session",
    "coalesce_text",
    "collect",
    "generate",
    "generate_sync",
    "iterate",
    "parse_event",
    "providers",
    "register_adapter",
    "request",
    "stream_generate",
    "system",
    "tool",
    "tool_result",
    "user",
]
