"""``Engine``: which adapter to use, its options, and call defaults.

An engine whose adapter is a registered name (``"fake"``, ``"openai"``,
``"anthropic"``, ``"gemini"``) is plain data and round-trips through JSON. A
``"module:Class"`` adapter string never imports a module by itself: it resolves when
the module is already imported, when the path is registered, or when the engine was
validated with ``context={"allow_imports": True}`` (which imports it then), so an
engine loaded from untrusted JSON cannot make the program import code. Unknown engine
fields raise :class:`~rx_allm.errors.EngineError` naming the nearest field. API
keys given in ``adapter_opts`` (or ``params``) are held as ``SecretStr`` and never
serialized, neither to JSON nor by pickle; a ``session`` or any other live object is
left out of the serialized form.
"""

from __future__ import annotations

import importlib
import itertools
import re
import sys
import threading
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from rx_allm.adapter import StreamAdapter
from rx_allm.errors import EngineError
from rx_allm.models import Tool
from rx_allm.strict import suggestion

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


_IDENTIFIERS = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_IMPORT_PATH = re.compile(rf"{_IDENTIFIERS}:{_IDENTIFIERS}")


def _checked_path(path: str) -> str:
    if not _IMPORT_PATH.fullmatch(path):
        raise EngineError(
            "missing_adapter", f"malformed adapter path {path!r}: expected 'package.module:Class'"
        )
    return path.partition(":")[0]


def _import(path: str, *, trusted: bool) -> Any:
    """The object a ``"module:Class"`` path names; an untrusted path never imports its module."""
    module_name = _checked_path(path)
    attr = path.partition(":")[2]
    if not trusted and module_name not in sys.modules:
        raise EngineError(
            "missing_adapter",
            f"adapter {path!r} is in a module that is not imported: import it first, register the "
            "adapter with rx_allm.register_adapter(), or validate the engine with "
            "context={'allow_imports': True}",
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise EngineError("missing_adapter", f"cannot import adapter {path!r}: {exc}") from None
    if not callable(getattr(target, "stream", None)):
        raise EngineError("missing_stream_adapter", f"{path!r} is not an adapter (no stream(request, opts))")
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
        registered = adapter in _REGISTRY or adapter in _REGISTRY.values()
        target = _REGISTRY.get(adapter, adapter if ":" in adapter else None)
        if target is None:
            hint = suggestion(adapter, _REGISTRY)
            raise EngineError("missing_adapter", f"no adapter registered as {adapter!r} ({hint})")
        instance = _instantiate(_import(target, trusted=registered) if isinstance(target, str) else target)
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
    """An adapter plus its options and the defaults (model, tools, params) of every call.

    Attributes:
        adapter: a class, an instance, a registered name (``"fake"``, ``"openai"``,
            ``"anthropic"``, ``"gemini"``) or a ``"module:Class"`` path (see the module
            docstring for when such a path resolves).
        adapter_opts: the adapter's options (``api_key``, ``base_url``, ``session``, ...;
            each adapter lists its own); an unknown key is refused at the call.
        model: the default model (a request's or a call's ``model`` wins).
        tools: the default tools, used when the request has none.
        params: default call options and provider parameters (a call's options win).

    An unknown field raises :class:`~rx_allm.errors.EngineError` (``invalid_engine``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    adapter: Any = None
    adapter_opts: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)

    _calls: CallCounter = PrivateAttr(default_factory=CallCounter)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and not _FIELDS.issuperset(data):
            for name in data:
                if name not in cls.model_fields:
                    raise EngineError(
                        "invalid_engine",
                        f"Engine has no field {name!r}; {suggestion(str(name), cls.model_fields)}",
                    )
        return data

    @field_validator("adapter")
    @classmethod
    def _allowed_import(cls, adapter: Any, info: ValidationInfo) -> Any:
        allowed = isinstance(info.context, dict) and info.context.get("allow_imports") is True
        if allowed and isinstance(adapter, str) and ":" in adapter and adapter not in _REGISTRY:
            _import(adapter, trusted=True)  # the caller opted in: import the module now
        return adapter

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


_FIELDS = frozenset(Engine.model_fields)


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


__all__ = ["Engine", "register_adapter", "resolve_adapter"]
