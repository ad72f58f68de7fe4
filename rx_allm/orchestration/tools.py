"""Tool definitions: the ``tool`` decorator (schema from the signature), ``AskUser`` and ``Halt``.

``@tool`` turns a function (sync or async) into a :class:`FunctionTool`: its JSON Schema
comes from the signature through pydantic, its description from the docstring, and the
model's arguments are validated against the signature before the call. ``tool(name=...,
description=..., schema=...)`` without a function is a plain :class:`~rx_allm.models.Tool`
spec the caller runs itself (a chat halts with ``manual_tool_calls`` on it); it is also a
decorator: ``@tool(name="x")``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

import pydantic
from pydantic import BaseModel, ConfigDict

from rx_allm.errors import ValidationError
from rx_allm.models import Tool


class AskUser(Exception):
    """Raised by a tool to ask the user a question: the chat halts with ``ask_user``.

    ``opts`` (choices, a default...) travel with the ``ask_user_requested`` event.
    """

    def __init__(self, question: str, **opts: Any) -> None:
        super().__init__(question)
        self.question = question
        self.opts = opts


class Halt:
    """Returned by a tool to end the chat with ``reason``; ``result`` is the tool's result."""

    __slots__ = ("reason", "result")

    def __init__(self, reason: str, result: Any = None) -> None:
        if not isinstance(reason, str) or not reason:
            raise ValueError("Halt needs a non-empty reason string")
        self.reason = reason
        self.result = result

    def __repr__(self) -> str:
        return f"Halt({self.reason!r}, {self.result!r})"


class FunctionTool:
    """A function the chat loop runs for the model; still callable like the function."""

    __slots__ = ("arguments", "fn", "is_async", "manual", "spec", "timeout")

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        schema: dict[str, Any] | None = None,
        manual: bool = False,
        timeout: float | None = None,
    ) -> None:
        tool_name: str = name or str(getattr(fn, "__name__", ""))
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValidationError("invalid_tool", errors=[(f"tools.{tool_name}.timeout", "must_be_positive")])
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.manual = manual
        self.timeout = None if timeout is None else float(timeout)
        self.arguments = arguments_model(fn, tool_name)
        doc = description if description is not None else (inspect.getdoc(fn) or "")
        self.spec = Tool(name=tool_name, description=doc, schema=schema or _schema(self.arguments))

    @property
    def name(self) -> str:
        """The tool's name as the model sees it."""
        return self.spec.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the function (raises ``pydantic.ValidationError``)."""
        # extra="forbid": the validated model's ``__dict__`` holds exactly the parameters.
        return dict(self.arguments.model_validate(dict(arguments)).__dict__)


def arguments_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model of ``fn``'s parameters (raises :class:`ValidationError` ``invalid_tool``)."""
    where = f"tools.{name or '?'}"
    try:
        signature = inspect.signature(fn, eval_str=True)
    except NameError:
        raise ValidationError("invalid_tool", errors=[(where, "unresolved_annotation")]) from None
    except (TypeError, ValueError):
        raise ValidationError("invalid_tool", errors=[(where, "no_signature")]) from None
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ValidationError("invalid_tool", errors=[(f"{where}.{param.name}", "unsupported_parameter")])
        annotation = Any if param.annotation is param.empty else param.annotation
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    try:
        model: type[BaseModel] = pydantic.create_model(
            f"{name or 'tool'}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        model.model_json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError, NameError) as exc:
        raise ValidationError(
            "invalid_tool",
            f"tool {name!r}: pydantic cannot describe its signature ({type(exc).__name__})",
            errors=[(where, "unsupported_signature")],
        ) from None
    return model


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


class ToolSpec(Tool):
    """A tool definition with no function (the caller runs it); calling it with a function decorates."""

    def __call__(self, fn: Callable[..., Any]) -> FunctionTool:
        explicit = self.schema_ if "schema_" in self.model_fields_set else None
        return FunctionTool(fn, name=self.name, description=self.description or None, schema=explicit)


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@overload
def tool(
    *,
    name: str,
    description: str = "",
    schema: dict[str, Any] | None = None,
) -> ToolSpec: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    schema: dict[str, Any] | None = None,
    manual: bool = False,
    timeout: float | None = None,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    schema: dict[str, Any] | None = None,
    manual: bool = False,
    timeout: float | None = None,
) -> Any:
    """Define a tool: ``@tool``, ``@tool(name=..., manual=..., timeout=...)``, or a spec ``tool(name=...)``.

    With a function the result is a :class:`FunctionTool` (schema from the signature unless
    ``schema`` is given). ``tool(name=..., description=..., schema=...)`` alone is a spec
    the caller runs (:class:`ToolSpec`, a :class:`~rx_allm.models.Tool`).
    """
    if fn is not None:
        return FunctionTool(
            fn, name=name, description=description, schema=schema, manual=manual, timeout=timeout
        )
    if name is not None and not manual and timeout is None:
        spec: dict[str, Any] = {"name": name, "description": description or ""}
        if schema is not None:
            spec["schema"] = schema
        return ToolSpec(**spec)

    def decorate(function: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            function, name=name, description=description, schema=schema, manual=manual, timeout=timeout
        )

    return decorate


ToolLike = FunctionTool | Tool | Callable[..., Any]


class Toolbox:
    """The tools of one chat by name: specs for the request, functions to run (pre-flight checked)."""

    __slots__ = ("by_name", "specs")

    def __init__(self, tools: Iterable[ToolLike]) -> None:
        self.by_name: dict[str, FunctionTool | Tool] = {}
        errors: list[tuple[str, str]] = []
        for index, item in enumerate(tools):
            entry = _as_tool(item)
            if entry.name in self.by_name:
                errors.append((f"tools.{index}.name", "duplicate_name"))
            self.by_name[entry.name] = entry
        if errors:
            raise ValidationError("invalid_tool", errors=errors)
        self.specs = [t.spec if isinstance(t, FunctionTool) else t for t in self.by_name.values()]

    def get(self, name: str) -> FunctionTool | Tool | None:
        """The tool called ``name``."""
        return self.by_name.get(name)


def _as_tool(item: object) -> FunctionTool | Tool:
    if isinstance(item, (FunctionTool, Tool)):
        return item
    if callable(item):
        return FunctionTool(item)
    raise ValidationError(
        "invalid_tool", f"not a tool: {type(item).__name__}", errors=[("tools", "not_a_tool")]
    )


__all__ = ["AskUser", "FunctionTool", "Halt", "ToolLike", "ToolSpec", "Toolbox", "arguments_model", "tool"]
