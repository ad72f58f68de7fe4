"""Browser protocols: the Vercel AI SDK UI message stream and AG-UI, one operator away.

* :func:`ai_sdk_frames` / :func:`ai_sdk_sse` — chat or generate events to the UI message
  stream ``useChat`` consumes; :func:`messages_from_ai_sdk` — its request to a ``Thread``;
* :func:`ag_ui_frames` / :func:`ag_ui_sse` — the AG-UI event stream; :func:`messages_from_ag_ui`
  — a ``RunAgentInput`` to its ids, a ``Thread`` and the client's tools;
* :func:`ai_sdk_handler`, :func:`ag_ui_handler` — aiohttp handlers doing the whole exchange;
* :data:`IMAGE_TYPES` — the images a user message may carry; :data:`METADATA_KEY` — the key
  of the provider data both streams send along and both readers restore;
* ``rx_allm.ui.push`` — raw rx_allm events as SSE, for a back end written by hand;
* ``rx_allm.ui.app`` — the chat app of ``rx-allm serve`` (``rx_allm.ui.serving``: serving any app).

See the "Serve a chat UI" guide.
"""

from rx_allm.ui._inbound import IMAGE_TYPES, METADATA_KEY
from rx_allm.ui.ag_ui import AG_UI_HEADERS, ag_ui_frames, ag_ui_sse
from rx_allm.ui.ag_ui_input import RunAgentInput, messages_from_ag_ui
from rx_allm.ui.ai_sdk import AI_SDK_HEADERS, ai_sdk_frames, ai_sdk_sse
from rx_allm.ui.ai_sdk_messages import messages_from_ai_sdk
from rx_allm.ui.framing import SSE_DONE, sse_data
from rx_allm.ui.handlers import ag_ui_handler, ai_sdk_handler

__all__ = [
    "AG_UI_HEADERS",
    "AI_SDK_HEADERS",
    "IMAGE_TYPES",
    "METADATA_KEY",
    "SSE_DONE",
    "RunAgentInput",
    "ag_ui_frames",
    "ag_ui_handler",
    "ag_ui_sse",
    "ai_sdk_frames",
    "ai_sdk_handler",
    "ai_sdk_sse",
    "messages_from_ag_ui",
    "sse_data",
    "messages_from_ai_sdk",
]
