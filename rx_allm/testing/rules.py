"""What the emulated APIs refuse in a request body, the way the real ones do.

The emulator remembers what it handed out (:class:`Issued`: Anthropic thinking signatures,
Responses reasoning items and the item each one preceded, Gemini thought signatures) and
checks every request with :func:`refusal` before it serves a reply. A body the real API
would reject gets the provider's own 400 (or 404) error body with a message modelled on
the real one:

* every provider: a tool result must answer a tool call of the turn before it (Gemini:
  as many ``functionResponse`` parts, with the same names, as the ``functionCall`` turn);
  OpenAI Chat Completions also needs a tool message for every call;
* Anthropic with ``thinking`` enabled: the assistant turn answered by the final tool
  results starts with a ``thinking``/``redacted_thinking`` block; a thinking block carries
  a signature the emulator issued;
* Responses: a ``reasoning`` item the emulator issued comes back with its id, followed by
  the item it preceded; a call that followed a reasoning item comes back with it;
* Gemini with a ``thinkingConfig``: the first ``functionCall`` part of each model turn of the
  current turn carries the ``thoughtSignature`` the emulator issued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Issued", "Refusal", "refusal"]

_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
_SIGNATURE_DOCS = "https://ai.google.dev/gemini-api/docs/thought-signatures"
#: The signatures Gemini documents for calls it did not produce (accepted without a check).
_GEMINI_STAND_INS = frozenset({"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"})


@dataclass
class Issued:
    """Continuation tokens the emulator handed out (a follow-up must send them back verbatim)."""

    anthropic_signatures: set[str] = field(default_factory=set)
    #: reasoning item id → the id of the output item that followed it
    responses_reasoning: dict[str, str] = field(default_factory=dict)
    #: function call ``call_id`` → the reasoning item id it followed
    responses_calls: dict[str, str] = field(default_factory=dict)
    gemini_signatures: set[str] = field(default_factory=set)

    def merge(self, other: Issued) -> None:
        """Remember what ``other`` (one rendered reply) handed out too."""
        self.anthropic_signatures |= other.anthropic_signatures
        self.responses_reasoning.update(other.responses_reasoning)
        self.responses_calls.update(other.responses_calls)
        self.gemini_signatures |= other.gemini_signatures


@dataclass(frozen=True)
class Refusal:
    """A rejected request: the HTTP status and the provider's error body."""

    status: int
    body: dict[str, Any]


def refusal(provider: str, body: Any, issued: Issued) -> Refusal | None:
    """The error the real ``provider`` API would answer ``body`` with, or None when it is acceptable."""
    if not isinstance(body, dict):
        return None
    check = _CHECKS.get(provider)
    problem = check(body, issued) if check is not None else None
    if problem is None:
        return None
    status, message = problem
    return Refusal(status, _error_body(provider, status, message))


def _error_body(provider: str, status: int, message: str) -> dict[str, Any]:
    if provider == "anthropic":
        kind = "not_found_error" if status == 404 else "invalid_request_error"
        return {"type": "error", "error": {"type": kind, "message": message}}
    if provider == "gemini":
        return {"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}}
    return {"error": {"message": message, "type": "invalid_request_error", "param": "input", "code": None}}


Problem = tuple[int, str]


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# -- OpenAI Chat Completions ----------------------------------------------------------------
def _chat(body: dict[str, Any], issued: Issued) -> Problem | None:
    messages = _dicts(body.get("messages"))
    for i, message in enumerate(messages):
        if message.get("role") != "tool":
            continue
        calls = _answerable_chat_calls(messages, i)
        if message.get("tool_call_id") not in calls:
            return 400, (
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                "message with 'tool_calls'."
            )
    for i, message in enumerate(messages):
        ids = [c.get("id") for c in _dicts(message.get("tool_calls"))]
        if message.get("role") != "assistant" or not ids:
            continue
        answered = set()
        for later in messages[i + 1 :]:
            if later.get("role") != "tool":
                break
            answered.add(later.get("tool_call_id"))
        missing = [str(x) for x in ids if x not in answered]
        if missing:
            return 400, (
                "An assistant message with 'tool_calls' must be followed by tool messages responding "
                f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                f"{', '.join(missing)}"
            )
    return None


def _answerable_chat_calls(messages: list[dict[str, Any]], index: int) -> set[Any]:
    """The tool call ids of the assistant message before the run of tool messages holding ``index``."""
    j = index
    while j > 0 and messages[j - 1].get("role") == "tool":
        j -= 1
    if j == 0 or messages[j - 1].get("role") != "assistant":
        return set()
    return {c.get("id") for c in _dicts(messages[j - 1].get("tool_calls"))}


# -- OpenAI Responses -------------------------------------------------------------------------
def _responses(body: dict[str, Any], issued: Issued) -> Problem | None:
    items = _dicts(body.get("input"))
    calls = {item.get("call_id") for item in items if item.get("type") == "function_call"}
    for item in items:
        if item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            return 400, f"No tool call found for function call output with call_id {item.get('call_id')}."
    sent_reasoning = {item.get("id") for item in items if item.get("type") == "reasoning"}
    for i, item in enumerate(items):
        problem = _responses_item(items, i, item, sent_reasoning, issued)
        if problem is not None:
            return problem
    return None


def _responses_item(
    items: list[dict[str, Any]], i: int, item: dict[str, Any], sent: set[Any], issued: Issued
) -> Problem | None:
    item_id = item.get("id")
    if item.get("type") == "reasoning":
        following = issued.responses_reasoning.get(str(item_id))
        if following is None:
            return 404, f"Item with id '{item_id}' not found."
        nxt = items[i + 1] if i + 1 < len(items) else {}
        if nxt.get("id") != following:
            return (
                400,
                f"Item '{item_id}' of type 'reasoning' was provided without its required following item.",
            )
    if item.get("type") == "function_call":
        reasoning = issued.responses_calls.get(str(item.get("call_id")))
        if reasoning is not None and reasoning not in sent:
            return 400, (
                f"Item '{item_id or item.get('call_id')}' of type 'function_call' was provided without its "
                f"required 'reasoning' item: '{reasoning}'."
            )
    return None


# -- Anthropic Messages ---------------------------------------------------------------------------
def _anthropic(body: dict[str, Any], issued: Issued) -> Problem | None:
    messages = _dicts(body.get("messages"))
    problem = next(_anthropic_tool_pairs(messages), None)
    if problem is not None:
        return problem
    for i, message in enumerate(messages):
        for j, block in enumerate(_blocks(message)):
            problem = _thinking_block(f"messages.{i}.content.{j}", block, issued)
            if problem is not None:
                return problem
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        return _anthropic_final_turn(messages)
    return None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return _dicts(message.get("content"))


def _anthropic_tool_pairs(messages: list[dict[str, Any]]) -> Iterator[Problem]:
    for i, message in enumerate(messages):
        uses = [b.get("id") for b in _blocks(message) if b.get("type") == "tool_use"]
        previous = messages[i - 1] if i else {}
        known = {b.get("id") for b in _blocks(previous) if b.get("type") == "tool_use"}
        for j, block in enumerate(_blocks(message)):
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in known:
                yield (
                    400,
                    (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    ),
                )
        following = messages[i + 1] if i + 1 < len(messages) else None
        if uses and following is not None:
            answered = {b.get("tool_use_id") for b in _blocks(following) if b.get("type") == "tool_result"}
            missing = [str(u) for u in uses if u not in answered]
            if missing:
                yield (
                    400,
                    (
                        f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                        f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                        "corresponding `tool_result` block in the next message."
                    ),
                )


def _thinking_block(path: str, block: dict[str, Any], issued: Issued) -> Problem | None:
    kind = block.get("type")
    if kind == "redacted_thinking" and not isinstance(block.get("data"), str):
        return 400, f"{path}.redacted_thinking.data: Field required"
    if kind != "thinking":
        return None
    signature = block.get("signature")
    if not isinstance(signature, str) or not signature:
        return 400, f"{path}.thinking.signature: Field required"
    if signature not in issued.anthropic_signatures:
        return 400, f"{path}: Invalid `signature` in `thinking` block"
    return None


def _anthropic_final_turn(messages: list[dict[str, Any]]) -> Problem | None:
    """With thinking on, the assistant turn before the final tool results starts with thinking."""
    if len(messages) < 2 or not any(b.get("type") == "tool_result" for b in _blocks(messages[-1])):
        return None
    i = len(messages) - 2
    blocks = _blocks(messages[i])
    first = blocks[0].get("type") if blocks else "text"
    if first in ("thinking", "redacted_thinking"):
        return None
    return 400, (
        f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{first}`. "
        "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
        "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
        "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please "
        f"consult our documentation at {_THINKING_DOCS}"
    )


# -- Gemini -------------------------------------------------------------------------------------------
def _gemini(body: dict[str, Any], issued: Issued) -> Problem | None:
    contents = _dicts(body.get("contents"))
    for i, content in enumerate(contents):
        responses = [
            p["functionResponse"] for p in _parts(content) if isinstance(p.get("functionResponse"), dict)
        ]
        if not responses:
            continue
        previous = contents[i - 1] if i else {}
        calls = [p["functionCall"] for p in _parts(previous) if isinstance(p.get("functionCall"), dict)]
        if sorted(str(r.get("name")) for r in responses) != sorted(str(c.get("name")) for c in calls):
            return 400, (
                "Please ensure that the number of function response parts is equal to the number of "
                "function call parts of the function call turn."
            )
    config = body.get("generationConfig")
    if isinstance(config, dict) and isinstance(config.get("thinkingConfig"), dict):
        return _gemini_signatures(contents, issued)
    return None


def _parts(content: dict[str, Any]) -> list[dict[str, Any]]:
    return _dicts(content.get("parts"))


def _gemini_signatures(contents: list[dict[str, Any]], issued: Issued) -> Problem | None:
    """The first function call of each model turn since the last user text carries an issued signature."""
    start = 0
    for i, content in enumerate(contents):
        if content.get("role") == "user" and any("text" in p for p in _parts(content)):
            start = i + 1
    for i, content in enumerate(contents[start:], start):
        calls = [p for p in _parts(content) if isinstance(p.get("functionCall"), dict)]
        if content.get("role") != "model" or not calls:
            continue
        signature = calls[0].get("thoughtSignature")
        position = _parts(content).index(calls[0]) + 1
        name = calls[0]["functionCall"].get("name")
        if not isinstance(signature, str) or not signature:
            return 400, (
                "Function call is missing a thought_signature in functionCall parts. This is required for "
                "tools to work correctly, and missing thought_signature may lead to degraded model "
                f"performance. Additional data, function call `default_api:{name}` , position {position}. "
                f"Please refer to {_SIGNATURE_DOCS} for more details."
            )
        if signature not in issued.gemini_signatures and signature not in _GEMINI_STAND_INS:
            return 400, f"Corrupted thought signature (contents.{i}.parts.{position - 1})."
    return None


_CHECKS: dict[str, Callable[[dict[str, Any], Issued], Problem | None]] = {
    "openai": _chat,
    "responses": _responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
}
