"""What the two OpenAI endpoints share: the error dialect, the headers and the tool specs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rx_allm._classify import ErrorBody, ErrorDialect, error_body_object, in_band_error
from rx_allm.errors import AdapterError
from rx_allm.models import ToolCall

PROVIDER = "openai"

LATER_GPT = r"gpt-(?:[5-9]|\d{2,})"  # gpt-5 and every later generation
_TOOL_CHOICE_MODES = {"auto": "auto", "none": "none", "required": "required", "any": "required"}


# -- errors ---------------------------------------------------------------------
def opt_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value) or None
    return None


def error_info(error: Any) -> ErrorBody:
    """An OpenAI error object (``{"message", "type", "param", "code"}``, or a bare message string)."""
    if isinstance(error, str):
        return ErrorBody(message=error or None)
    if not isinstance(error, dict):
        return ErrorBody()
    param = opt_text(error.get("param"))
    return ErrorBody(
        message=opt_text(error.get("message")),
        type=opt_text(error.get("type")),
        code=opt_text(error.get("code")),
        metadata={"error_param": param} if param else {},
    )


def read_error_body(body: Any) -> ErrorBody:
    """What an HTTP error body says: ``{"error": {...}}``, ``{"error": "text"}`` or a bare error object."""
    body = error_body_object(body)
    return error_info(body["error"] if body.get("error") is not None else body)


DIALECT = ErrorDialect(
    provider=PROVIDER,
    label="OpenAI",
    read_body=read_error_body,
    context_markers=("maximum context length", "context_length_exceeded", "context window", "context length"),
    content_filter_markers=("content_filter", "content filter", "content management policy"),
    type_reasons={
        "context_length_exceeded": "context_length_exceeded",
        "content_filter": "content_filter",
        "content_policy_violation": "content_filter",
        "server_error": "provider_unavailable",
        "rate_limit_exceeded": "rate_limited",
        "insufficient_quota": "rate_limited",
        "requests": "rate_limited",
        "tokens": "rate_limited",
        "invalid_api_key": "authentication_failed",
        "invalid_request_error": "invalid_request",
        "invalid_prompt": "invalid_request",
        "model_not_found": "invalid_request",
    },
)


def unsupported(message: str) -> AdapterError:
    return AdapterError("unsupported_feature", message, provider=PROVIDER)


def is_azure(adapter_opts: Mapping[str, Any]) -> bool:
    """Azure OpenAI: an ``azure_deployment`` or an ``api_version`` is set."""
    return bool(adapter_opts.get("azure_deployment") or adapter_opts.get("api_version"))


def request_headers(key: str, adapter_opts: Mapping[str, Any]) -> dict[str, str]:
    """The key (``Authorization: Bearer``, or Azure's ``api-key``), JSON in, SSE out, organization/project."""
    auth = {"api-key": key} if is_azure(adapter_opts) else {"Authorization": f"Bearer {key}"}
    headers = {
        **auth,
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    for option, header in (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project")):
        value = adapter_opts.get(option)
        if value:
            headers[header] = str(value)
    return headers


# -- request bodies: pieces shared by both endpoints ---------------------------------
def arguments_text(call: ToolCall) -> str:
    """A past call's arguments as the JSON text OpenAI expects."""
    return call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False)


def tool_choice(choice: str | dict[str, Any] | None, flat: bool) -> str | dict[str, Any] | None:
    """Modes pass through; a tool name (or a function choice of either endpoint's shape) is translated."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in _TOOL_CHOICE_MODES:
            return _TOOL_CHOICE_MODES[choice]
        name: Any = choice
    elif choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        if not isinstance(name, str):
            return choice
    else:
        return choice
    return {"type": "function", "name": name} if flat else {"type": "function", "function": {"name": name}}


def json_schema_spec(fmt: Mapping[str, Any]) -> dict[str, Any]:
    """``name``/``schema``/``strict``/``description`` of a json_schema format (nested or flat form)."""
    nested = fmt.get("json_schema")
    spec = nested if isinstance(nested, dict) else fmt
    out = {"name": spec.get("name"), "schema": spec.get("schema")}
    for key in ("strict", "description"):
        if key in spec:
            out[key] = spec[key]
    return out


def merge_params(body: dict[str, Any], params: Mapping[str, Any], skip: frozenset[str]) -> None:
    for key, value in params.items():
        if key not in skip and value is not None:
            body[key] = value


def put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


# -- stream mapping --------------------------------------------------------------------
def fields_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def raise_in_band(error: Any) -> None:
    """Raise the typed error an in-band OpenAI error object stands for."""
    raise in_band_error(DIALECT, error_info(error))


__all__ = [
    "DIALECT",
    "PROVIDER",
    "arguments_text",
    "error_info",
    "fields_of",
    "json_schema_spec",
    "merge_params",
    "opt_text",
    "put",
    "raise_in_band",
    "read_error_body",
    "request_headers",
    "tool_choice",
    "unsupported",
]
