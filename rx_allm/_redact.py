"""Keeping API keys out of messages, reprs, logs and serialized data.

Two layers: the key shapes every supported provider uses (OpenAI ``sk-``/``rk-``/
``org-``, Anthropic ``sk-ant-``, Google ``AIza``/``ya29.``), and the exact key
values this process has used (adapters call :func:`remember_secret` when they
resolve a key), so even a key of an unknown shape is masked.

Remembered keys are matched case-insensitively and through URL (``%2F``) and JSON
(``\\u0073``) escapes of ASCII characters, as servers and proxies echo them. The registry
costs the same for every key, however many there are (a bring-your-own-key service sees
thousands): a key is filed under its last eight characters (its random part; keys of one
provider share their first ones), and a text is scanned once, one dictionary lookup per
eight-character window — no pattern over all keys is ever built.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable

MASK = "[REDACTED]"

#: Provider key shapes, checked on every redaction.
KEY_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"\b(?:sk|rk|org|sess)-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{10,}"),
    re.compile(r"\bya29\.[0-9A-Za-z_\-.]{6,}"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9_\-.~+/]{8,}=*"),
)

_MIN_SECRET_LENGTH = 8
_WINDOW = _MIN_SECRET_LENGTH  # keys are filed under their last characters, case-folded
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})|\\u([0-9A-Fa-f]{4})", re.ASCII)
# the last characters of a key (its random part; the start is often a shared prefix such as
# ``sk-proj-``) -> the keys ending with them, longest first
_by_tail: dict[str, tuple[str, ...]] = {}
_lock = threading.Lock()

Span = Callable[[int, int], tuple[int, int]]  # a match in the unescaped text -> where it is in the original


def remember_secret(value: str | None) -> None:
    """Add a key value to those masked by :func:`redact` (values under 8 characters are ignored)."""
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    key = value.lower()
    tail = key[-_WINDOW:]
    with _lock:
        known = _by_tail.get(tail, ())
        if key not in known:
            _by_tail[tail] = tuple(sorted((*known, key), key=len, reverse=True))


def redact(text: str) -> str:
    """Return ``text`` with every known key value and provider key shape masked."""
    if not text:
        return text
    if _by_tail and len(text) >= _MIN_SECRET_LENGTH:
        text = _mask_known(text)
    for shape in KEY_PATTERNS:
        text = shape.sub(_mask_match, text)
    return text


def _mask_known(text: str) -> str:
    """Mask the remembered keys in ``text``, matched in its unescaped, case-folded form."""
    plain, span = _unescape(text)
    table = _by_tail
    windows = {plain[i : i + _WINDOW] for i in range(len(plain) - _WINDOW + 1)}
    found = list(filter(table.__contains__, windows))  # usually none: one set pass, no Python loop
    if not found:
        return text
    hits: list[tuple[int, int]] = []
    for tail in found:
        end = plain.find(tail) + _WINDOW
        while end >= _WINDOW:
            key = next((k for k in table[tail] if plain.startswith(k, end - len(k))), None)
            if key is not None:
                hits.append((end - len(key), end))
            end = plain.find(tail, end - _WINDOW + 1) + _WINDOW
    if not hits:
        return text
    out: list[str] = []
    done = 0
    for begin, end in _merged(hits):
        first, stop = span(begin, end)
        out += (text[done:first], MASK)
        done = stop
    out.append(text[done:])
    return "".join(out)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` sorted, overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def _unescape(text: str) -> tuple[str, Span]:
    """``text`` case-folded, its ``%XX`` and ``\\uXXXX`` ASCII escapes decoded, and the map back."""
    if not text.isascii():
        return _unescape_slowly(text)
    folded = text.lower()  # the same length for ASCII
    if "%" not in text and "\\u" not in text:
        return folded, lambda begin, end: (begin, end)
    pieces: list[str] = []
    marks: list[tuple[int, int, int]] = []  # each decoded escape: its index in the result, its span in text
    position = length = 0
    for escape in _ESCAPE.finditer(folded):
        code = int(escape.group(1) or escape.group(2), 16)
        if code > 0x7F:  # only ASCII escapes: keys are ASCII
            continue
        literal = folded[position : escape.start()]
        pieces += (literal, chr(code).lower())
        length += len(literal)
        marks.append((length, escape.start(), escape.end()))
        length += 1
        position = escape.end()
    pieces.append(folded[position:])
    indexes = [mark[0] for mark in marks]

    def where(index: int, after: bool) -> int:
        k = bisect.bisect_right(indexes, index) - 1  # the last escape at or before ``index``
        if k >= 0 and indexes[k] == index:
            return marks[k][2] if after else marks[k][1]
        shift = 0 if k < 0 else marks[k][2] - indexes[k] - 1  # what the escapes before took beyond one char
        return index + shift + after

    return "".join(pieces), lambda begin, end: (where(begin, False), where(end - 1, True))


def _unescape_slowly(text: str) -> tuple[str, Span]:
    """:func:`_unescape` character by character, for any text."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for escape in _ESCAPE.finditer(text):
        code = int(escape.group(1) or escape.group(2), 16)
        if code > 0x7F:
            continue
        _fold(text[position : escape.start()], position, chars, starts, ends)
        chars.append(chr(code).lower())
        starts.append(escape.start())
        ends.append(escape.end())
        position = escape.end()
    _fold(text[position:], position, chars, starts, ends)
    return "".join(chars), lambda begin, end: (starts[begin], ends[end - 1])


def _fold(piece: str, offset: int, chars: list[str], starts: list[int], ends: list[int]) -> None:
    for index, char in enumerate(piece, offset):
        for folded in char.lower():  # one character may fold to two ("İ")
            chars.append(folded)
            starts.append(index)
            ends.append(index + 1)


def _mask_match(match: re.Match[str]) -> str:
    if match.re.groups:  # "Bearer <token>": keep the scheme word
        return f"{match.group(1)} {MASK}"
    return MASK


__all__ = ["KEY_PATTERNS", "MASK", "redact", "remember_secret"]
