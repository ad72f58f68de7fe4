"""The adapter contract: ``stream(request, opts) -> Observable[Event]``.

An adapter raises :class:`~rx_allm.errors.AdapterError` (or ``EngineError``) for
pre-flight failures and otherwise returns a *cold, lazy* Observable: nothing
happens until it is subscribed, each subscription is one provider request,
disposal cancels that request, and a failure after subscription is the
terminal ``on_error`` carrying an ``AdapterError`` or a ``StreamError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr
from reactivex import Observable

from rx_allm.events import Event
from rx_allm.models import Request


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Everything the runner resolved for one call, handed to ``adapter.stream``.

    ``params`` are provider parameters (engine params merged under call options)
    that have no :class:`~rx_allm.models.Request` field; ``call_index`` counts the
    engine's calls (the Fake adapter's script cursor). A key is never shown in a
    repr: ``api_key`` is left out of it and ``adapter_opts["api_key"]`` is held as a
    ``SecretStr``, as on an :class:`~rx_allm.engine.Engine`.
    """

    model: str | None = None
    stream_timeout: float = 60.0
    request_timeout: float = 60.0
    request_id: str | None = None
    adapter_opts: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)
    call_index: int = 0

    def __post_init__(self) -> None:
        key = self.adapter_opts.get("api_key")
        if isinstance(key, str):
            object.__setattr__(self, "adapter_opts", {**self.adapter_opts, "api_key": SecretStr(key)})
        if isinstance(self.api_key, SecretStr):  # an engine's params hold their key as SecretStr
            object.__setattr__(self, "api_key", self.api_key.get_secret_value())


@runtime_checkable
class StreamAdapter(Protocol):
    """What an engine's adapter must provide.

    Optional class attributes read by the runner: ``name`` (str, used in errors)
    and ``requires_model`` (bool, default False: pre-flight raises
    ``EngineError("missing_model")`` when True and no model resolved).
    """

    def stream(self, request: Request, opts: StreamOptions) -> Observable[Event]:
        """Return a cold Observable of events for ``request`` (raise for pre-flight failures)."""
        ...
