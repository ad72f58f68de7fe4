"""Render neutral :class:`Reply` scripts into the four providers' streaming wire formats.

A :class:`Reply` says *what* the emulated model answers (text deltas, tool calls, finish,
usage, thinking) without saying *how* a provider spells it. :func:`renderer` returns a
:class:`Renderer` for one provider that turns the reply into SSE frames shaped like the
real APIs (and like ``tests/fixtures/wire/*.sse``):

* ``openai`` - Chat Completions chunks, ``data:`` lines only, ``data: [DONE]`` at the end,
  the ``choices: []`` usage chunk only when the request asked for
  ``stream_options.include_usage``.
* ``responses`` - OpenAI Responses events with ``event:`` lines and an increasing
  ``sequence_number``; usage on the terminal ``response.completed``/``response.incomplete``.
* ``anthropic`` - Messages events (``message_start`` ... ``message_stop``) with a ``ping``,
  block indexes, ``input_json_delta`` fragments and ``signature_delta`` for thinking.
* ``gemini`` - ``GenerateContentResponse`` chunks with CRLF line endings, whole
  ``functionCall`` args and running ``usageMetadata`` totals on every chunk.

Neutral usage keys are ``input_tokens`` (all prompt tokens, cached ones included),
``output_tokens`` (reasoning included), ``cached_input_tokens`` and ``reasoning_tokens``;
each renderer converts them to its provider's semantics (Anthropic ``input_tokens``
excludes cache reads; Gemini ``candidatesTokenCount`` excludes thoughts). By default
(``usage="auto"``) the counts are computed from the text: one token per four characters
(rounded up) of the request's text for the input, of the reply's text, tool arguments and
thinking for the output (thinking also gives ``reasoning_tokens``).

Continuation tokens a renderer hands out (thinking signatures, reasoning item ids, Gemini
thought signatures) are recorded in its :attr:`Renderer.issued`, which the emulator keeps
to check follow-up requests (:mod:`rx_allm.testing.rules`).

Rendering is deterministic for a given ``seed`` (the emulator passes the request index),
so generated ids are stable within a stream and differ between requests.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rx_allm.testing.rules import Issued

__all__ = [
    "PROVIDERS",
    "REQUEST_ID_HEADERS",
    "Frame",
    "Renderer",
    "Reply",
    "ToolCallSpec",
    "error_body",
    "estimate_tokens",
    "native_finish",
    "render_body",
    "renderer",
    "split_frames",
    "split_text",
]

PROVIDERS = ("openai", "responses", "anthropic", "gemini")
REQUEST_ID_HEADERS = {
    "openai": "x-request-id",
    "responses": "x-request-id",
    "anthropic": "request-id",
    "gemini": "x-goog-request-id",
}
CREATED = 1767225600  # fixed timestamp: rendering stays byte-for-byte reproducible
_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"


@dataclass
class ToolCallSpec:
    """A tool call the emulated model makes."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None  # generated per provider if None; Gemini sends an id only if given
    fragments: int = 3  # argument fragments to stream (Gemini sends whole args)


@dataclass
class Reply:
    """What the next request gets: a format-agnostic script plus optional faults.

    ``text`` as a str is split into word-sized deltas (see :func:`split_text`); a list
    gives the deltas exactly. ``body`` serves raw SSE bytes verbatim instead of
    rendering (faults still apply; its frames are cut at blank lines).

    Fault fields ``*_after=N`` act once N scripted events (SSE frames) were written;
    injected frames (malformed, invalid UTF-8) do not count. ``malformed_after`` and
    ``invalid_utf8_after`` insert one frame and the stream goes on; ``error_after``,
    ``truncate_after``, ``stall_after`` and ``reset_after`` end it. ``huge_line_bytes``
    prepends one text delta of that many ASCII bytes. ``error_type`` "server_error" is
    sent as ``api_error`` by Anthropic and ``INTERNAL`` by Gemini (an upper-case value is
    taken as a Gemini status). Status 1xx/204/304 responses carry no body.

    ``usage="auto"`` computes the counts from the text (see the module docstring); a dict
    gives them; None sends none. ``thinking`` streams reasoning before the answer (Anthropic
    thinking with a signature, a Responses reasoning item, Gemini thought parts with a
    ``thoughtSignature``, Chat Completions ``reasoning_content`` deltas as compatible servers
    send them); ``redacted_thinking`` adds an Anthropic ``redacted_thinking`` block; ``refusal``
    makes the model refuse with that text (``delta.refusal``, Responses refusal events, or
    Anthropic ``stop_reason: "refusal"`` with ``stop_details``).
    """

    text: str | list[str] = "Hello from the emulator."
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    finish: str = "stop"  # stop | length | tool_calls | content_filter (others pass through)
    usage: dict[str, int] | Literal["auto"] | None = "auto"
    thinking: str | None = None
    redacted_thinking: str | None = None
    refusal: str | None = None
    body: bytes | None = None
    # faults
    status: int = 200
    error_body: bytes | str | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    header_delay: float = 0.0
    chunk_delay: float = 0.0
    tail_delay: float = 0.0  # seconds between the last frame and the end of the body
    stall_after: int | None = None
    error_after: int | None = None
    error_type: str = "server_error"
    truncate_after: int | None = None
    malformed_after: int | None = None
    reset_after: int | None = None
    invalid_utf8_after: int | None = None
    huge_line_bytes: int | None = None
    rechunk_seed: int | None = None
    max_chunk: int = 64


@dataclass(frozen=True)
class Frame:
    """One SSE event before encoding: a JSON payload (dict) or raw data text (str)."""

    data: dict[str, Any] | str
    event: str | None = None


def split_text(text: str | list[str]) -> list[str]:
    """Word-sized deltas whose concatenation is ``text`` (a list is taken as is)."""
    if isinstance(text, list):
        return list(text)
    return re.findall(r"\s*\S+|\s+", text)


def split_frames(body: bytes) -> list[bytes]:
    """Cut a raw SSE body after each blank line (LF, CRLF or CR); a partial tail is kept."""
    parts = re.split(rb"(\r\n\r\n|\n\n|\r\r)", body)
    frames = [a + b for a, b in zip(parts[0::2], parts[1::2], strict=False)]
    return frames + ([parts[-1]] if parts[-1] else [])


def _fragments(text: str, n: int) -> list[str]:
    """Split ``text`` into ``n`` pieces at even character positions (mid-token on purpose)."""
    n = max(1, min(n, len(text)))
    cuts = [round(i * len(text) / n) for i in range(n + 1)]
    return [text[a:b] for a, b in itertools.pairwise(cuts)]


def _get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...`` or None when any level is missing or not a dict."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def estimate_tokens(text: str) -> int:
    """The emulator's token count for ``text``: one per four characters, rounded up."""
    return -(-len(text) // 4)


def _request_text(request: dict[str, Any]) -> str:
    """Every string a request body holds under its message keys (for the input count)."""
    keys = ("messages", "input", "contents", "system", "systemInstruction", "instructions")
    return " ".join(text for key in keys for text in _strings(request.get(key)))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)


@dataclass(frozen=True)
class _Usage:
    input: int
    output: int
    cached: int
    reasoning: int

    @classmethod
    def of(cls, reply: Reply, request: dict[str, Any], output_text: str) -> _Usage | None:
        usage = reply.usage
        if usage is None:
            return None
        if usage == "auto":
            reasoning = estimate_tokens(reply.thinking or "")
            output = estimate_tokens(output_text) + reasoning
            return cls(max(1, estimate_tokens(_request_text(request))), output, 0, reasoning)
        return cls(*(int(usage.get(k, 0)) for k in _USAGE_KEYS))


_USAGE_KEYS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")

_FINISH: dict[str, dict[str, str]] = {
    "openai": {},
    "responses": {"stop": "completed", "tool_calls": "completed", "length": "max_output_tokens"},
    "anthropic": {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "content_filter": "refusal",
    },
    "gemini": {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"},
}


def native_finish(provider: str, reply: Reply) -> str:
    """The provider's spelling of ``reply.finish`` (tool calls turn "stop" into "tool_calls").

    For ``responses`` the result is ``"completed"`` or an ``incomplete_details.reason``.
    Unknown values pass through unchanged, so provider-specific reasons can be scripted.
    """
    finish = "tool_calls" if reply.tool_calls and reply.finish == "stop" else reply.finish
    if reply.refusal is not None and provider == "anthropic":
        return "refusal"
    return _FINISH[provider].get(finish, finish)


class Renderer:
    """Base of the four renderers: shared state, ids and SSE encoding."""

    provider: ClassVar[str]
    newline: ClassVar[str] = "\n"
    separators: ClassVar[tuple[str, str]] = (",", ":")
    delta_event: ClassVar[str | None] = None  # `event:` name of a text delta, if the format has them
    default_model: ClassVar[str] = "emulated-model"

    def __init__(self, reply: Reply, request: Any = None, *, seed: int = 0, model: str | None = None) -> None:
        self.reply = reply
        self.request: dict[str, Any] = request if isinstance(request, dict) else {}
        self._rng = random.Random(f"{self.provider}:{seed}")
        self.model = model or str(self.request.get("model") or self.default_model)
        self.deltas = split_text(reply.text)
        if reply.huge_line_bytes:
            self.deltas.insert(0, "x" * reply.huge_line_bytes)
        self.text = "".join(self.deltas)
        self.has_text = bool(self.deltas) or not reply.tool_calls
        self.thinking = split_text(reply.thinking or "")
        self.finish = native_finish(self.provider, reply)
        self.arguments = [json.dumps(c.arguments, ensure_ascii=False) for c in reply.tool_calls]
        self.usage = _Usage.of(
            reply, self.request, self.text + (reply.refusal or "") + "".join(self.arguments)
        )
        self.obfuscate = _get(self.request, "stream_options", "include_obfuscation") is not False
        self.issued = Issued()
        self._seq = 0

    def new_id(self, prefix: str, length: int, alphabet: str = _ALNUM) -> str:
        return prefix + "".join(self._rng.choice(alphabet) for _ in range(length))

    def padded(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` plus OpenAI's ``obfuscation`` padding unless the request turned it off."""
        return (
            {**fields, "obfuscation": self.new_id("", self._rng.randint(1, 8))} if self.obfuscate else fields
        )

    def event(self, type_: str, **fields: Any) -> Frame:
        """A frame whose ``event:`` line repeats the payload's ``type``."""
        return Frame({"type": type_, **fields}, event=type_)

    def frames(self) -> list[Frame]:
        raise NotImplementedError

    def text_frame(self, text: str) -> Frame:
        """A text delta in the context of this stream (used to inject faults)."""
        raise NotImplementedError

    def error_frame(self, error_type: str) -> Frame:
        """The provider's in-band error event."""
        raise NotImplementedError

    def stamp(self, data: dict[str, Any]) -> dict[str, Any]:
        """Hook to add per-event counters at encoding time."""
        return data

    def encode(self, frame: Frame | bytes) -> bytes:
        """Encode a frame (bytes pass through); called in write order."""
        if isinstance(frame, bytes):
            return frame
        data = frame.data
        if isinstance(data, dict):
            data = json.dumps(self.stamp(data), ensure_ascii=False, separators=self.separators)
        lines = ([f"event: {frame.event}"] if frame.event else []) + [f"data: {data}"]
        return (self.newline.join(lines) + self.newline * 2).encode()


class _ChatRenderer(Renderer):
    provider = "openai"
    default_model = "gpt-4o-mini-2024-07-18"

    def __init__(self, reply: Reply, request: Any = None, *, seed: int = 0, model: str | None = None) -> None:
        super().__init__(reply, request, seed=seed, model=model)
        self.id = self.new_id("chatcmpl-", 29)
        options = _get(self.request, "stream_options")
        self.include_usage = _get(options, "include_usage") is True
        self.call_ids = [c.id or self.new_id("call_", 24) for c in reply.tool_calls]

    def _chunk(
        self, delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, Any] | None = None
    ) -> Frame:
        """A chunk with one choice, or with ``choices: []`` when ``delta`` is None (the usage chunk)."""
        choices = (
            [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": "fp_5a7c9e1b3d",
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage
        return Frame(self.padded(chunk))

    def _tool_deltas(self) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = []
        for i, (call, call_id, args) in enumerate(
            zip(self.reply.tool_calls, self.call_ids, self.arguments, strict=True)
        ):
            first = {
                "index": i,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            rest = [
                {"index": i, "function": {"arguments": part}} for part in _fragments(args, call.fragments)
            ]
            deltas += [{"tool_calls": [tc]} for tc in [first, *rest]]
        return deltas

    def frames(self) -> list[Frame]:
        refusal = self.reply.refusal
        role = {"role": "assistant", "content": "" if self.has_text else None, "refusal": None}
        if refusal is not None:
            role.update(content=None, refusal="")
        deltas: list[dict[str, Any]] = [{"reasoning_content": t} for t in self.thinking]
        deltas += [{"content": d} for d in self.deltas] + [{"refusal": r} for r in split_text(refusal or "")]
        deltas += self._tool_deltas()
        if self.has_text or not deltas:
            deltas.insert(0, role)
        else:  # like OpenAI: the first tool fragment carries the role
            deltas[0] = {**role, **deltas[0]}
        frames = [self._chunk(d) for d in deltas] + [self._chunk({}, self.finish)]
        if self.include_usage and (u := self.usage) is not None:
            usage = {
                "prompt_tokens": u.input,
                "completion_tokens": u.output,
                "total_tokens": u.input + u.output,
                "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": u.reasoning,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            }
            frames.append(self._chunk(None, usage=usage))
        return [*frames, Frame("[DONE]")]

    def text_frame(self, text: str) -> Frame:
        return self._chunk({"content": text})

    def error_frame(self, error_type: str) -> Frame:
        return Frame({"error": _openai_error(500, error_type)})


class _ResponsesRenderer(Renderer):
    provider = "responses"
    delta_event = "response.output_text.delta"
    default_model = "gpt-4.1-mini-2025-04-14"

    def __init__(self, reply: Reply, request: Any = None, *, seed: int = 0, model: str | None = None) -> None:
        super().__init__(reply, request, seed=seed, model=model)
        self.id = self.new_id("resp_", 32, _HEX)
        self.reasoning_id = self.new_id("rs_", 32, _HEX)
        self.message_id = self.new_id("msg_", 32, _HEX)
        self.message_index = 1 if reply.thinking is not None else 0
        self.call_items = [self.new_id("fc_", 32, _HEX) for _ in reply.tool_calls]
        self.call_ids = [c.id or self.new_id("call_", 24) for c in reply.tool_calls]
        include = self.request.get("include")
        self.encrypted = isinstance(include, list) and "reasoning.encrypted_content" in include

    def stamp(self, data: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        return {"type": data["type"], "sequence_number": self._seq - 1, **data}

    def _response(self, status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        tools = self.request.get("tools")
        u = self.usage if status in ("completed", "incomplete") else None
        usage = (
            None
            if u is None
            else {
                "input_tokens": u.input,
                "input_tokens_details": {"cached_tokens": u.cached},
                "output_tokens": u.output,
                "output_tokens_details": {"reasoning_tokens": u.reasoning},
                "total_tokens": u.input + u.output,
            }
        )
        return {
            "id": self.id,
            "object": "response",
            "created_at": CREATED,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": tools if isinstance(tools, list) else [],
            "usage": usage,
            "metadata": {},
            **extra,
        }

    def _item(
        self, index: int, item: dict[str, Any], events: list[Frame], done: dict[str, Any]
    ) -> list[Frame]:
        added = self.event("response.output_item.added", output_index=index, item=item)
        return [added, *events, self.event("response.output_item.done", output_index=index, item=done)]

    def _part(
        self,
        names: tuple[str, str],
        where: dict[str, Any],
        part: dict[str, Any],
        deltas: list[str],
        extra: dict[str, Any],
    ) -> list[Frame]:
        """``<part>.added``, ``<text>.delta`` x n, ``<text>.done``, ``<part>.done`` for one content part."""
        part_name, text_name = names
        text = "".join(deltas)
        return [
            self.event(f"{part_name}.added", **where, part={**part, "text": ""}),
            *(
                self.event(f"{text_name}.delta", **self.padded({**where, "delta": d, **extra}))
                for d in deltas
            ),
            self.event(f"{text_name}.done", **where, text=text, **extra),
            self.event(f"{part_name}.done", **where, part={**part, "text": text}),
        ]

    def _reasoning_item(self) -> tuple[list[Frame], dict[str, Any]]:
        where = {"item_id": self.reasoning_id, "output_index": 0, "summary_index": 0}
        part: dict[str, Any] = {"type": "summary_text"}
        done: dict[str, Any] = {
            "id": self.reasoning_id,
            "type": "reasoning",
            "summary": [{**part, "text": self.reply.thinking}],
        }
        if self.encrypted:
            done["encrypted_content"] = "gAAAAA" + self.new_id("", 120)
        events = self._part(
            ("response.reasoning_summary_part", "response.reasoning_summary_text"),
            where,
            part,
            self.thinking,
            {},
        )
        following = self.message_id if self.has_text else (self.call_items or [""])[0]
        self.issued.responses_reasoning[self.reasoning_id] = following
        self.issued.responses_calls.update(dict.fromkeys(self.call_ids, self.reasoning_id))
        return self._item(0, {**done, "summary": []}, events, done), done

    def _message_item(self) -> tuple[list[Frame], dict[str, Any]]:
        index = self.message_index
        where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
        part: dict[str, Any] = {"type": "output_text", "annotations": [], "logprobs": []}
        message = {"id": self.message_id, "type": "message", "role": "assistant"}
        refusal = self.reply.refusal
        if refusal is None:
            content = [{**part, "text": self.text}]
            events = self._part(
                ("response.content_part", "response.output_text"), where, part, self.deltas, {"logprobs": []}
            )
        else:
            content = [{"type": "refusal", "refusal": refusal}]
            events = [
                self.event("response.content_part.added", **where, part={"type": "refusal", "refusal": ""}),
                *(self.event("response.refusal.delta", **where, delta=d) for d in split_text(refusal)),
                self.event("response.refusal.done", **where, refusal=refusal),
                self.event("response.content_part.done", **where, part=content[0]),
            ]
        done = {**message, "status": "completed", "content": content}
        return self._item(index, {**message, "status": "in_progress", "content": []}, events, done), done

    def _items(self) -> list[tuple[list[Frame], dict[str, Any]]]:
        items = []
        if self.reply.thinking is not None:
            items.append(self._reasoning_item())
        if self.has_text:
            items.append(self._message_item())
        first_call = self.message_index + int(self.has_text)
        for i, (call, args) in enumerate(zip(self.reply.tool_calls, self.arguments, strict=True)):
            index = first_call + i
            item_id = self.call_items[i]
            item = {
                "id": item_id,
                "type": "function_call",
                "call_id": self.call_ids[i],
                "name": call.name,
            }
            where = {"item_id": item_id, "output_index": index}
            events = [
                self.event("response.function_call_arguments.delta", **self.padded({**where, "delta": part}))
                for part in _fragments(args, call.fragments)
            ]
            events.append(
                self.event("response.function_call_arguments.done", **where, name=call.name, arguments=args)
            )
            done = {**item, "status": "completed", "arguments": args}
            items.append(
                (self._item(index, {**item, "status": "in_progress", "arguments": ""}, events, done), done)
            )
        return items

    def frames(self) -> list[Frame]:
        start = self._response("in_progress", [])
        frames = [
            self.event("response.created", response=start),
            self.event("response.in_progress", response=start),
        ]
        items = self._items()
        output = [done for _, done in items]
        if self.finish == "completed":
            terminal = self.event("response.completed", response=self._response("completed", output))
        else:
            details = {"reason": self.finish}
            response = self._response("incomplete", output, incomplete_details=details)
            terminal = self.event("response.incomplete", response=response)
        return [*frames, *(f for events, _ in items for f in events), terminal]

    def text_frame(self, text: str) -> Frame:
        where = {"item_id": self.message_id, "output_index": self.message_index, "content_index": 0}
        return self.event("response.output_text.delta", **where, delta=text, logprobs=[])

    def error_frame(self, error_type: str) -> Frame:
        message = "An error occurred while processing your request. You can retry your request."
        error = {"code": error_type, "message": message}
        return self.event("response.failed", response=self._response("failed", [], error=error))


class _AnthropicRenderer(Renderer):
    provider = "anthropic"
    delta_event = "content_block_delta"
    default_model = "claude-sonnet-4-5-20250929"

    def __init__(self, reply: Reply, request: Any = None, *, seed: int = 0, model: str | None = None) -> None:
        super().__init__(reply, request, seed=seed, model=model)
        self.id = self.new_id("msg_01", 22)
        self.text_index = (reply.thinking is not None) + (reply.redacted_thinking is not None)

    def _block(self, index: int, block: dict[str, Any], deltas: list[dict[str, Any]]) -> list[Frame]:
        return [
            self.event("content_block_start", index=index, content_block=block),
            *(self.event("content_block_delta", index=index, delta=d) for d in deltas),
            self.event("content_block_stop", index=index),
        ]

    def _blocks(self) -> list[Frame]:
        frames: list[Frame] = []
        if self.reply.thinking is not None:
            deltas = [{"type": "thinking_delta", "thinking": t} for t in self.thinking]
            signature = self.new_id("Eq", 96)
            self.issued.anthropic_signatures.add(signature)
            frames += self._block(
                0,
                {"type": "thinking", "thinking": "", "signature": ""},
                [*deltas, {"type": "signature_delta", "signature": signature}],
            )
        if self.reply.redacted_thinking is not None:
            redacted = {"type": "redacted_thinking", "data": self.reply.redacted_thinking}
            frames += self._block(self.text_index - 1, redacted, [])
        if self.has_text:
            deltas = [{"type": "text_delta", "text": t} for t in self.deltas]
            frames += self._block(self.text_index, {"type": "text", "text": ""}, deltas)
        first_tool = self.text_index + int(self.has_text)
        for i, (call, args) in enumerate(zip(self.reply.tool_calls, self.arguments, strict=True)):
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.id or self.new_id("toolu_01", 22),
                "name": call.name,
                "input": {},
            }
            parts = ["", *_fragments(args, call.fragments)]
            frames += self._block(
                first_tool + i, block, [{"type": "input_json_delta", "partial_json": p} for p in parts]
            )
        return frames

    def frames(self) -> list[Frame]:
        u = self.usage
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        delta: dict[str, Any] = {"delta": {"stop_reason": self.finish, "stop_sequence": None}}
        if self.reply.refusal is not None:
            details = {"type": "refusal", "category": None, "explanation": self.reply.refusal or None}
            delta["delta"]["stop_details"] = details
        if u is not None:
            message["usage"] = {
                "input_tokens": u.input - u.cached,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": u.cached,
                "output_tokens": min(1, u.output),
                "service_tier": "standard",
            }
            delta["usage"] = {"output_tokens": u.output}
        frames = [self.event("message_start", message=message), *self._blocks()]
        frames.insert(min(2, len(frames)), Frame('{"type": "ping"}', event="ping"))
        return [*frames, self.event("message_delta", **delta), self.event("message_stop")]

    def text_frame(self, text: str) -> Frame:
        return self.event(
            "content_block_delta", index=self.text_index, delta={"type": "text_delta", "text": text}
        )

    def error_frame(self, error_type: str) -> Frame:
        error_type = "api_error" if error_type == "server_error" else error_type
        return self.event(
            "error", error={"type": error_type, "message": _ANTHROPIC_MESSAGES.get(error_type, "Error")}
        )


class _GeminiRenderer(Renderer):
    provider = "gemini"
    newline = "\r\n"
    separators = (",", ": ")
    default_model = "gemini-2.5-flash"

    def __init__(self, reply: Reply, request: Any = None, *, seed: int = 0, model: str | None = None) -> None:
        super().__init__(reply, request, seed=seed, model=model)
        self.response_id = self.new_id("", 23)

    def _usage(self, done: float) -> dict[str, int] | None:
        """Running ``usageMetadata`` once ``done`` (0..1] of the candidates were sent."""
        u = self.usage
        if u is None:
            return None
        candidates = round((u.output - u.reasoning) * done)
        meta = {
            "promptTokenCount": u.input,
            "candidatesTokenCount": candidates,
            "totalTokenCount": u.input + candidates + u.reasoning,
        }
        if u.cached:
            meta["cachedContentTokenCount"] = u.cached
        if u.reasoning:
            meta["thoughtsTokenCount"] = u.reasoning
        return meta

    def _chunk(self, parts: list[dict[str, Any]], done: float, finish: str | None = None) -> Frame:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish is not None:
            candidate["finishReason"] = finish
        chunk: dict[str, Any] = {"candidates": [{**candidate, "index": 0}]}
        usage = self._usage(done)
        if usage is not None:
            chunk["usageMetadata"] = usage
        return Frame({**chunk, "modelVersion": self.model, "responseId": self.response_id})

    def frames(self) -> list[Frame]:
        chunks: list[list[dict[str, Any]]] = [[{"text": t, "thought": True}] for t in self.thinking]
        chunks += [[{"text": d}] for d in self.deltas]
        calls = [
            {"functionCall": {"name": c.name, "args": c.arguments, **({"id": c.id} if c.id else {})}}
            for c in self.reply.tool_calls
        ]
        chunks += [calls] if calls else []
        chunks = chunks or [[{"text": ""}]]
        if self.reply.thinking is not None:  # thinking models sign the first call, else the last part
            signature = self.new_id("Cq", 64)
            self.issued.gemini_signatures.add(signature)
            signed: dict[str, Any] = calls[0] if calls else chunks[-1][-1]
            signed["thoughtSignature"] = signature
        n = len(chunks)
        return [
            self._chunk(parts, (i + 1) / n, self.finish if i == n - 1 else None)
            for i, parts in enumerate(chunks)
        ]

    def text_frame(self, text: str) -> Frame:
        return self._chunk([{"text": text}], 0.0)

    def error_frame(self, error_type: str) -> Frame:
        status = error_type if error_type.isupper() else "INTERNAL"
        code = next((c for c, s in _GOOGLE_STATUS.items() if s == status), 500)
        return Frame({"error": _google_error(code, status)})


_RENDERERS: dict[str, type[Renderer]] = {
    r.provider: r for r in (_ChatRenderer, _ResponsesRenderer, _AnthropicRenderer, _GeminiRenderer)
}


def renderer(
    provider: str, reply: Reply, request: Any = None, *, seed: int = 0, model: str | None = None
) -> Renderer:
    """A renderer for ``provider`` (one of :data:`PROVIDERS`); ``request`` is the parsed JSON body."""
    try:
        cls = _RENDERERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}") from None
    return cls(reply, request, seed=seed, model=model)


def render_body(
    provider: str, reply: Reply, request: Any = None, *, seed: int = 0, model: str | None = None
) -> bytes:
    """The complete SSE body for ``reply`` without faults (``reply.body`` is returned verbatim)."""
    if reply.body is not None:
        return reply.body
    r = renderer(provider, reply, request, seed=seed, model=model)
    return b"".join(r.encode(f) for f in r.frames())


# ---- HTTP error bodies -------------------------------------------------------------------------

_OPENAI_ERRORS: dict[int, tuple[str, str | None, str | None, str]] = {
    400: (
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
        "This model's maximum context length is 128000 tokens. However, your messages resulted in "
        "131072 tokens. Please reduce the length of the messages.",
    ),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        None,
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        None,
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        None,
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        None,
        "Rate limit reached for {model} on requests per min (RPM): Limit 500, Used 500, Requested 1. "
        "Please try again in 120ms.",
    ),
    500: (
        "server_error",
        None,
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, None, "The engine is currently overloaded, please try again later"),
}

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ANTHROPIC_MESSAGES = {
    "invalid_request_error": "prompt is too long: 211234 tokens > 200000 maximum",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "model: {model}",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}

_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GOOGLE_MESSAGES = {
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "UNAUTHENTICATED": "API key not valid. Please pass a valid API key.",
    "PERMISSION_DENIED": "Permission denied: Consumer has been suspended.",
    "NOT_FOUND": "models/{model} is not found for API version v1beta.",
    "RESOURCE_EXHAUSTED": "You exceeded your current quota, please check your plan and billing details.",
    "INTERNAL": "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    "UNAVAILABLE": "The model is overloaded. Please try again later.",
    "DEADLINE_EXCEEDED": "The request timed out. Please try again.",
}


def _openai_error(
    status: int, error_type: str | None = None, *, model: str = "", key: str = "sk-...abcd"
) -> dict[str, Any]:
    default = (
        _OPENAI_ERRORS[500] if status >= 500 else ("invalid_request_error", None, None, "Invalid request.")
    )
    type_, code, param, message = _OPENAI_ERRORS.get(status, default)
    return {
        "message": message.format(model=model, key=key),
        "type": error_type or type_,
        "param": param,
        "code": code,
    }


def _google_error(status: int, name: str | None = None, *, model: str = "") -> dict[str, Any]:
    name = name or _GOOGLE_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    message = _GOOGLE_MESSAGES.get(name, "Precondition check failed.")
    return {"code": status, "message": message.format(model=model), "status": name}


def _mask(api_key: str | None) -> str:
    if not api_key or len(api_key) < 8:
        return "sk-...abcd"
    return f"{api_key[:3]}...{api_key[-4:]}"


def error_body(provider: str, status: int, *, model: str = "", api_key: str | None = None) -> bytes:
    """The provider's own JSON error body for an HTTP ``status`` (Gemini's is pretty-printed)."""
    if provider == "anthropic":
        type_ = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        message = _ANTHROPIC_MESSAGES[type_].format(model=model)
        return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()
    if provider == "gemini":
        return (json.dumps({"error": _google_error(status, model=model)}, indent=2) + "\n").encode()
    return json.dumps({"error": _openai_error(status, model=model, key=_mask(api_key))}, indent=4).encode()
