"""Chat: the tool loop, threads and sessions as Observables (ALLM's orchestration layer).

* :func:`tool` — a function becomes a tool (schema from its signature); :class:`AskUser`
  and :class:`Halt` let a tool pause or end the chat;
* :func:`stream_chat` — one cold Observable per conversation; :func:`chat` /
  :func:`chat_sync` fold it into a :class:`ChatResult`;
* :class:`Thread` and :class:`Session` — the conversation as data (JSON round trip).

See ``docs/guides/chat.md``.
"""

from rx_allm.conversation import HALT_REASONS, ChatResult, StepResult, Thread, ToolOutcome
from rx_allm.orchestration.fold import ChatCollector, chat, chat_sync, fold_chat
from rx_allm.orchestration.loop import stream_chat
from rx_allm.orchestration.session import Session, SessionStatus
from rx_allm.orchestration.tools import AskUser, FunctionTool, Halt, ToolSpec, tool

__all__ = [
    "HALT_REASONS",
    "AskUser",
    "ChatCollector",
    "ChatResult",
    "FunctionTool",
    "Halt",
    "Session",
    "SessionStatus",
    "StepResult",
    "Thread",
    "ToolOutcome",
    "ToolSpec",
    "chat",
    "chat_sync",
    "fold_chat",
    "stream_chat",
    "tool",
]
