"""Request-side helpers every HTTP provider shares: the key, the URL, the JSON body, turns and tool specs."""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from pydantic import SecretStr

from rx_allm._classify import ErrorDialect
from rx_allm._redact import remember_secret
from rx_allm._transport import HttpCall
from rx_allm.adapter import Emit, StreamMapper, StreamOptions, parse_arguments
from rx_allm.errors import AdapterError, ValidationError
from rx_allm.models import Message, Tool, ToolCall
from rx_allm.strict import encode_body


def resolve_api_key(provider: str, opts: StreamOptions, env_vars: Sequence[str]) -> str:
    """The call's ``api_key``, else ``adapter_opts["api_key"]``, else the first set env var.

    The key is stripped of surrounding whitespace (as HTTP trims header values, and so as
    servers echo it). Raises ``AdapterError("authentication_failed")`` (pre-flight) when none
    is set, and ``ValidationError`` (``api_key``: ``inner_whitespace``) for a key with
    whitespace inside, which no provider issues: a key pasted together with something else.
    """
    candidates: list[Any] = [opts.api_key, opts.adapter_opts.get("api_key")]
    candidates += [os.environ.get(name) for name in env_vars]
    for value in candidates:
        key = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(key, str) and key.strip():
            key = key.strip()
            remember_secret(key)
            if any(char.isspace() for char in key):
                raise ValidationError("invalid_request", errors=[("api_key", "inner_whitespace")])
            return key
    names = " or ".join(env_vars)
    raise AdapterError(
        "authentication_failed",
        f"no API key for {provider}: pass api_key, set adapter_opts['api_key'] or {names}",
        provider=provider,
    )


#: Query parameters that carry a credential (refused in a ``base_url``).
_CREDENTIAL_PARAMS = frozenset({"key", "api_key", "api-key", "apikey", "access_token", "token"})


def base_url(opts: StreamOptions, default: str) -> str:
    """``adapter_opts["base_url"]`` (without a trailing slash) or the provider default.

    A URL carrying credentials (``user:password@``, a ``key=`` query parameter) is refused
    with ``AdapterError("invalid_request")`` naming the problem, never the URL: the key
    belongs in ``api_key``, where it is kept out of logs and errors.
    """
    url = str(opts.adapter_opts.get("base_url") or default).rstrip("/")
    parts = urlsplit(url)
    where = None
    if parts.username or parts.password:
        where = "user:password@ before the host"
    elif any(
        name.lower() in _CREDENTIAL_PARAMS for name, _ in parse_qsl(parts.query, keep_blank_values=True)
    ):
        where = "a key parameter in the query"
    if where is not None:
        raise AdapterError(
            "invalid_request", f"base_url carries credentials ({where}): pass the key as api_key instead"
        )
    return url


def http_call(
    opts: StreamOptions,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    new_mapper: Callable[[Emit], StreamMapper],
    dialect: ErrorDialect,
) -> HttpCall:
    """One provider request: ``body`` as compact JSON, with the call's timeouts and ``session``.

    A body JSON cannot carry raises ``ValidationError`` and a header value with a line break
    ``AdapterError("invalid_request")``, both before any I/O.
    """
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise AdapterError(
                "invalid_request",
                f"the {name.lower()!r} header value has a line break (CR/LF): check the option setting it",
                provider=dialect.provider,
            )
    return HttpCall(
        url=url,
        body=json_bytes(body),
        headers=headers,
        new_mapper=new_mapper,
        dialect=dialect,
        stream_timeout=opts.stream_timeout,
        request_timeout=opts.request_timeout,
        total_timeout=opts.total_timeout,
        max_event_bytes=opts.max_event_bytes,
        session=opts.adapter_opts.get("session"),
    )


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """A request body as compact UTF-8 JSON (``ValidationError`` naming the path of a non-JSON value)."""
    return encode_body(body)


def system_text(messages: Sequence[Message]) -> str:
    """The text of the system messages joined by a blank line (``""`` when there is none)."""
    return "\n\n".join(m.text for m in messages if m.role == "system" and m.text)


def turns(messages: Sequence[Message]) -> list[Message | list[Message]]:
    """The non-system messages in order, each run of consecutive tool results grouped in a list."""
    out: list[Message | list[Message]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role != "tool":
            out.append(message)
        elif out and isinstance(out[-1], list):
            out[-1].append(message)
        else:
            out.append([message])
    return out


class ImageSource(NamedTuple):
    """The image of an ``image_url`` content part: its URL and, for a ``data:`` URL, its base64 data."""

    url: str
    media_type: str | None  # a data: URL's own; else guessed from the URL's path (None when unknown)
    data: str | None  # base64; None for an image sent by URL


def image_source(part: Mapping[str, Any]) -> ImageSource | None:
    """The image of ``part`` when it is the library's image part (OpenAI's ``image_url`` shape)."""
    image = part.get("image_url") if part.get("type") == "image_url" else None
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        return None
    if not url.startswith("data:"):
        return ImageSource(url, mimetypes.guess_type(urlsplit(url).path)[0], None)
    head, _, payload = url[len("data:") :].partition(",")
    media_type, *params = head.split(";")
    data = payload if "base64" in params else base64.b64encode(unquote_to_bytes(payload)).decode()
    return ImageSource(url, media_type or None, data)


def call_arguments(call: ToolCall) -> dict[str, Any]:
    """A past tool call's arguments as a dict (parsed from ``raw_arguments`` when ``arguments`` is empty)."""
    return dict(call.arguments) if call.arguments else parse_arguments(call.raw_arguments)


def tool_spec(tool: Tool, schema_key: str) -> dict[str, Any]:
    """A tool as Anthropic and Gemini declare it: ``name``, schema under ``schema_key``, ``description``."""
    spec: dict[str, Any] = {"name": tool.name, schema_key: tool.schema_}
    if tool.description:
        spec["description"] = tool.description
    return spec


def tool_choice_spec(
    choice: str | dict[str, Any] | None,
    none: dict[str, Any],
    required: dict[str, Any],
    named: Callable[[str], dict[str, Any]],
) -> dict[str, Any] | None:
    """A ``tool_choice`` in a provider's shape: ``None``/``"auto"`` → ``None`` (the default), a dict as given,
    ``"none"`` → ``none``, ``"required"`` or ``"any"`` (a mode word, not a tool name) → ``required``,
    any other name → ``named(name)``."""
    if choice is None or choice == "auto":
        return None
    if isinstance(choice, dict):
        return choice
    if choice == "none":
        return none
    if choice in ("required", "any"):
        return required
    return named(choice)


__all__ = [
    "base_url",
    "call_arguments",
    "http_call",
    "json_bytes",
    "resolve_api_key",
    "system_text",
    "tool_choice_spec",
    "tool_spec",
    "turns",
]
