"""rx_allm: LLM provider streams as cold ReactiveX Observables over aiohttp.

Quick start::

    import rx_allm as allm

    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", "hi"), ("finish", "stop")]})
    response = allm.generate_sync(engine, allm.request([allm.user("say hi")]))
    assert response.output_text == "hi"
"""

from rx_allm import otel, providers
from rx_allm._connections import close_session
from rx_allm._sse import DEFAULT_MAX_EVENT_BYTES
from rx_allm.adapter import StreamAdapter, StreamOptions
from rx_allm.collector import StreamCollector
from rx_allm.engine import Engine, register_adapter
from rx_allm.errors import (
    AdapterError,
    BlockingCallError,
    EngineError,
    RxAllmError,
    StreamError,
    ValidationError,
)
from rx_allm.events import (
    AskUserRequested,
    ChatCompleted,
    Event,
    MessageCompleted,
    MessageStarted,
    RawChunk,
    StepCompleted,
    TextCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionCompleted,
    ToolExecutionStarted,
    ToolHalt,
    ToolResultEncoded,
    parse_event,
)
from rx_allm.iterate import EventStream, iterate, iterate_sync
from rx_allm.models import (
    Message,
    Reasoning,
    Request,
    Response,
    Tool,
    ToolCall,
    Usage,
    assistant,
    request,
    system,
    tool_result,
    user,
)
from rx_allm.operators import coalesce_text
from rx_allm.orchestration import (
    AskUser,
    ChatResult,
    FunctionTool,
    Halt,
    Session,
    StepResult,
    Thread,
    ToolOutcome,
    chat,
    chat_sync,
    stream_chat,
    tool,
)
from rx_allm.retries import fallback, retry
from rx_allm.runner import collect, generate, generate_sync, stream_generate
from rx_allm.structured import PartialArguments, partial_arguments, partial_output

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "AdapterError",
    "AskUser",
    "AskUserRequested",
    "BlockingCallError",
    "ChatCompleted",
    "ChatResult",
    "Engine",
    "EngineError",
    "Event",
    "EventStream",
    "FunctionTool",
    "Halt",
    "Message",
    "MessageCompleted",
    "MessageStarted",
    "PartialArguments",
    "RawChunk",
    "Reasoning",
    "Request",
    "Response",
    "RxAllmError",
    "Session",
    "StepCompleted",
    "StepResult",
    "StreamAdapter",
    "StreamCollector",
    "StreamError",
    "StreamOptions",
    "TextCompleted",
    "TextDelta",
    "Thread",
    "Tool",
    "ToolCall",
    "ToolCallCompleted",
    "ToolCallDelta",
    "ToolCallStarted",
    "ToolExecutionCompleted",
    "ToolExecutionStarted",
    "ToolHalt",
    "ToolOutcome",
    "ToolResultEncoded",
    "Usage",
    "ValidationError",
    "__version__",
    "assistant",
    "chat",
    "chat_sync",
    "close_session",
    "coalesce_text",
    "collect",
    "fallback",
    "generate",
    "generate_sync",
    "iterate",
    "iterate_sync",
    "otel",
    "parse_event",
    "partial_arguments",
    "partial_output",
    "providers",
    "register_adapter",
    "request",
    "retry",
    "stream_chat",
    "stream_generate",
    "system",
    "tool",
    "tool_result",
    "user",
]
