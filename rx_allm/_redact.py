"""Keeping API keys out of messages, reprs, logs and serialized data.

Two layers: the key shapes every supported provider uses (OpenAI ``sk-``/``rk-``/
``org-``, Anthropic ``sk-ant-``, Google ``AIza``/``ya29.``), and the exact key
values this process has used (adapters call :func:`remember_secret` when they
resolve a key), so even a key of an unknown shape is masked.
"""

from __future__ import annotations

import re
import threading

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
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()


def remember_secret(value: str | None) -> None:
    """Add a key value to the set masked by :func:`redact` (short values are ignored)."""
    global _secret_pattern
    if not value or len(value) < _MIN_SECRET_LENGTH or value in _secrets:
        return
    with _lock:
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Return ``text`` with every known key value and provider key shape masked."""
    if not text:
        return text
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for shape in KEY_PATTERNS:
        text = shape.sub(_mask_match, text)
    return text


def _mask_match(match: re.Match[str]) -> str:
    if match.re.groups:  # "Bearer <token>": keep the scheme word
        return f"{match.group(1)} {MASK}"
    return MASK


__all__ = ["KEY_PATTERNS", "MASK", "redact", "remember_secret"]
