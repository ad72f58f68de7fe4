"""``Engine``: which adapter to use, its options, and call defaults.

An engine whose adapter is a registered name (``"fake"``, ``"openai"``,
``"anthropic"``, ``"gemini"``) is plain data and round-trips through JSON. API
keys given in ``adapter_opts`` (or ``params``) are held as ``SecretStr`` and never
serialized, neither to JSON nor by pickle; a ``session`` or any other live object is
left out of the serialized form.
"""

from __future__ import annotations

import importlib
import itertools
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_serializer, field_validator

from rx_allm.adapter import StreamAdapter
from rx_allm.errors import EngineError
from rx_allm.models import Tool

_REGISTRY: dict[str, Any] = {
    "fake": "rx_allm.providers.fake:Fake",
    "openai": "rx_allm.providers.openai:OpenAI",
    "anthropic": "rx_allm.providers.anthropic:Anthropic",
    "gemini": "rx_allm.providers.gemini:Gemini",
}
_instances: dict[Any, StreamAdapter] = {}
_registry_lock = threading.Lock()


def register_adapter(name: str, adapter: type | object | str) -> None:
    """Register an adapter class, instance or ``"module:Class"`` path under ``name``."""
    with _registry_lock:
        _REGISTRY[name] = adapter
        _instances.pop(name, None)


def _registered_name(adapter: object) -> str | None:
    for name, target in _REGISTRY.items():
        if target is adapter or (
            isinstance(target, str) and isinstance(adapter, type) and target == _path(adapter)
        ):
            return name
    return None


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise EngineError("missing_adapter", f"cannot import adapter {path!r}: {exc}") from None
    return target


def _instantiate(target: Any) -> Any:
    return target() if isinstance(target, type) else target


def resolve_adapter(adapter: object) -> StreamAdapter:
    """Turn a class, an instance, a registered name or a ``"module:Class"`` path into an adapter."""
    if adapter is None:
        raise EngineError("missing_adapter", "the engine has no adapter")
    if isinstance(adapter, str):
        cached = _instances.get(adapter)
        if cached is not None:
            return cached
        target = _REGISTRY.get(adapter, adapter if ":" in adapter else None)
        if target is None:
            known = ", ".join(sorted(_REGISTRY))
            raise EngineError("missing_adapter", f"no adapter registered as {adapter!r} (known: {known})")
        instance = _instantiate(_import(target) if isinstance(target, str) else target)
        resolved = _check_stream(instance)
        _instances[adapter] = resolved
        return resolved
    if isinstance(adapter, type):
        cached = _instances.get(adapter)
        if cached is None:
            cached = _instances[adapter] = _check_stream(adapter())
        return cached
    return _check_stream(adapter)


def _check_stream(instance: Any) -> StreamAdapter:
    if not callable(getattr(instance, "stream", None)):
        raise EngineError(
            "missing_stream_adapter", f"adapter {type(instance).__name__} has no stream(request, opts) method"
        )
    return instance  # type: ignore[no-any-return]


class CallCounter:
    """0, 1, 2, ... from any thread; pickled and copied as its next value.

    ``itertools.count`` does the counting, but its own pickle and copy support is deprecated
    (removed in Python 3.14), so an engine is pickled or deep-copied through this wrapper.
    """

    __slots__ = ("_count",)

    def __init__(self, start: int = 0) -> None:
        self._count = itertools.count(start)

    def __next__(self) -> int:
        return next(self._count)

    def __reduce__(self) -> tuple[type[CallCounter], tuple[int]]:
        value = next(self._count)
        self._count = itertools.count(value)  # the value read is not lost
        return CallCounter, (value,)


class Engine(BaseModel):
    """An adapter plus its options and the defaults (model, tools, params) of every call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    adapter: Any = None
    adapter_opts: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)

    _calls: CallCounter = PrivateAttr(default_factory=CallCounter)

    @field_validator("adapter_opts", "params")
    @classmethod
    def _hide_key(cls, opts: dict[str, Any]) -> dict[str, Any]:
        key = opts.get("api_key")
        if isinstance(key, str):
            opts = {**opts, "api_key": SecretStr(key)}
        return opts

    @field_serializer("adapter")
    def _adapter_name(self, adapter: Any) -> str | None:
        if adapter is None or isinstance(adapter, str):
            return adapter
        cls = adapter if isinstance(adapter, type) else type(adapter)
        return _registered_name(adapter) or _registered_name(cls) or _path(cls)

    @field_serializer("adapter_opts")
    def _plain_opts(self, opts: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in opts.items() if k != "api_key" and _is_plain(v)}

    @field_serializer("params")
    def _keyless_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k != "api_key"}

    def __getstate__(self) -> dict[Any, Any]:
        """Pickled like the JSON form, without the API key (an unpickled engine uses the environment's)."""
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        for name in ("adapter_opts", "params"):
            fields[name] = {k: v for k, v in fields[name].items() if k != "api_key"}
        return {**state, "__dict__": fields}

    def resolve_adapter(self) -> StreamAdapter:
        """The adapter object for this engine (raises :class:`EngineError`)."""
        return resolve_adapter(self.adapter)

    def next_call_index(self) -> int:
        """0 for the engine's first call, then 1, 2, ... (thread-safe)."""
        # Read from the private-attribute dict directly: pydantic's __getattr__ costs ~1.7 µs a call.
        counter: CallCounter = self.__pydantic_private__["_calls"]  # type: ignore[index]
        return next(counter)


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


__all__ = ["Engine", "register_adapter", "resolve_adapter"]
