"""OpenAI: the Chat Completions and Responses streaming endpoints.

``OpenAI.stream`` resolves the key and the endpoint, builds the JSON body and returns
:func:`~rx_allm._transport.http_stream` (cold: one POST per subscription). The endpoint
is ``adapter_opts["endpoint"]`` (``"chat_completions"`` or ``"responses"``), else chosen
by model: ``gpt-5`` and later and the ``o1``..``o9`` reasoning series use Responses,
everything else Chat Completions.

Each endpoint has its module: :mod:`~rx_allm.providers.openai.chat` and
:mod:`~rx_allm.providers.openai.responses` build the body and map the stream;
:mod:`~rx_allm.providers.openai.shared` holds what both use (the error dialect
classifying in-band error frames and HTTP error bodies, the headers, the tool specs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from reactivex import Observable

from rx_allm._transport import http_stream
from rx_allm.adapter import Emit, StreamMapper, StreamOptions
from rx_allm.events import Event
from rx_allm.models import Request
from rx_allm.providers._names import OPENAI_OPTIONS, OPENAI_PARAMS
from rx_allm.providers._request import base_url, http_call, resolve_api_key
from rx_allm.providers.openai import chat, responses
from rx_allm.providers.openai.chat import ChatCompletionsMapper
from rx_allm.providers.openai.responses import ResponsesMapper
from rx_allm.providers.openai.shared import (
    DIALECT,
    LATER_GPT,
    is_azure,
    request_headers,
    unsupported,
)

_RESPONSES_MODELS = re.compile(rf"^(?:{LATER_GPT}|o[1-9])")


# -- the adapter ----------------------------------------------------------------
class OpenAI:
    """Streams OpenAI Chat Completions or Responses (``adapter_opts``: ``api_key``, ``base_url``,
    ``endpoint``, ``organization``, ``project``, ``session``; Azure OpenAI: ``azure_deployment``,
    ``api_version``)."""

    name = "openai"
    requires_model = True
    env_vars: tuple[str, ...] = ("OPENAI_API_KEY",)
    #: Where an Azure OpenAI key is looked up (the Azure variable first).
    azure_env_vars: tuple[str, ...] = ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY")
    default_base_url = "https://api.openai.com/v1"
    default_model = "gpt-4.1-mini"
    options = OPENAI_OPTIONS
    params = OPENAI_PARAMS

    def stream(self, request: Request, opts: StreamOptions) -> Observable[Event]:
        """Pre-flight (raising), then a cold Observable performing one POST per subscription."""
        azure = is_azure(opts.adapter_opts)
        key = resolve_api_key(self.name, opts, self.azure_env_vars if azure else self.env_vars)
        model = request.model or opts.model or ""
        endpoint = ENDPOINTS[select_endpoint(model, opts)]
        check_supported(request, opts, endpoint.name)
        url = endpoint_url(opts, os.environ.get("OPENAI_BASE_URL") or self.default_base_url, endpoint.path)
        body = endpoint.build_body(request, model, opts.params)
        headers = request_headers(key, opts.adapter_opts)
        return http_stream(http_call(opts, url, body, headers, endpoint.mapper, DIALECT))


def endpoint_url(opts: StreamOptions, default_base_url: str, path: str) -> str:
    """``base_url`` (else ``OPENAI_BASE_URL``, else the API) + the path; Azure deployments get theirs.

    With ``azure_deployment`` the path is ``/openai/deployments/<name><path>`` under the
    resource's ``base_url``; ``api_version`` is sent as the ``api-version`` query parameter.
    """
    url = base_url(opts, default_base_url)
    deployment = opts.adapter_opts.get("azure_deployment")
    if deployment:
        url += f"/openai/deployments/{quote(str(deployment), safe='')}"
    url += path
    version = opts.adapter_opts.get("api_version")
    return f"{url}?{urlencode({'api-version': version})}" if version else url


def select_endpoint(model: str, opts: StreamOptions) -> str:
    """``"chat_completions"`` or ``"responses"``: the explicit option, else by model."""
    endpoint = opts.params.get("endpoint") or opts.adapter_opts.get("endpoint")
    if endpoint is None:
        return "responses" if _RESPONSES_MODELS.match(model) else "chat_completions"
    if endpoint not in ENDPOINTS:
        raise unsupported(f"unknown OpenAI endpoint {endpoint!r}: use 'chat_completions' or 'responses'")
    return str(endpoint)


def check_supported(request: Request, opts: StreamOptions, endpoint: str) -> None:
    """Refuse combinations this adapter cannot stream faithfully (``unsupported_feature``)."""
    choices = request.options.get("n", opts.params.get("n"))
    if isinstance(choices, int) and choices > 1:
        raise unsupported("OpenAI streams are mapped for one choice; n > 1 is not supported")
    if endpoint == "chat_completions" and opts.params.get("reasoning_summary") is not None:
        raise unsupported("reasoning_summary needs the Responses endpoint (endpoint='responses')")
    for i, message in enumerate(request.messages):
        if message.role == "system" and _has_non_text(message.content):
            raise unsupported(f"messages.{i}: a system message can only carry text parts")


def _has_non_text(content: str | list[dict[str, Any]]) -> bool:
    return not isinstance(content, str) and any(part.get("type", "text") != "text" for part in content)


# -- endpoints --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Endpoint:
    """One OpenAI streaming endpoint: its path, body builder and mapper."""

    name: str
    path: str
    build_body: Callable[[Request, str, Mapping[str, Any]], dict[str, Any]]
    mapper: Callable[[Emit], StreamMapper]


ENDPOINTS: dict[str, Endpoint] = {
    "chat_completions": Endpoint(
        "chat_completions", "/chat/completions", chat.build_body, ChatCompletionsMapper
    ),
    "responses": Endpoint("responses", "/responses", responses.build_body, ResponsesMapper),
}

__all__ = ["DIALECT", "ENDPOINTS", "ChatCompletionsMapper", "OpenAI", "ResponsesMapper", "select_endpoint"]
