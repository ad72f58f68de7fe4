"""``response_format=Model``: a pydantic class as a strict JSON schema, and its output type.

:func:`strict_json_schema` turns a model's JSON schema into the strict form the
providers' constrained decoding accepts: every object closed
(``additionalProperties: false``) with all its properties required, no ``default``
keywords, and a ``$ref`` that has sibling keywords (a field's ``description``)
inlined, since a ``$ref`` must stand alone there. The model still validates the
output with its own rules, defaults included.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

#: Keywords whose value maps names to schemas (their keys are names, not keywords).
_NAMED_SCHEMAS = frozenset({"properties", "$defs", "patternProperties"})


def output_type(fmt: object) -> type[BaseModel] | None:
    """The pydantic class of a ``response_format``, or None for a string or dict format."""
    return fmt if isinstance(fmt, type) and issubclass(fmt, BaseModel) else None


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in strict form (see the module docstring)."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    out = _strict(schema, definitions)
    assert isinstance(out, dict)
    return out


def _strict(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1 and ref.startswith("#/$defs/"):
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**definitions[ref.removeprefix("#/$defs/")], **siblings}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            out[key] = {name: _strict(schema, definitions) for name, schema in value.items()}
        else:
            out[key] = _strict(value, definitions)
    if out.get("type") == "object" and isinstance(out.get("properties"), dict):
        out["additionalProperties"] = False
        out["required"] = list(out["properties"])
    return out


def schema_name(model: type[BaseModel]) -> str:
    """The class name as the providers accept a schema name (``[A-Za-z0-9_-]``, at most 64)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", model.__name__)[:64] or "output"


def json_schema_format(model: type[BaseModel]) -> dict[str, Any]:
    """The provider-neutral ``json_schema`` response format of ``model`` (name, strict schema)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": schema_name(model), "schema": strict_json_schema(model), "strict": True},
    }


def schema_of(fmt: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a ``json_schema`` format dict (nested ``json_schema`` or flat form)."""
    holder = fmt.get("json_schema", fmt)
    schema = holder.get("schema") if isinstance(holder, dict) else None
    return schema if isinstance(schema, dict) else {}


def normalize_format(fmt: Any) -> str | dict[str, Any] | None:
    """A model class becomes its :func:`json_schema_format`; a string or dict format is returned as is."""
    model = output_type(fmt)
    if model is not None:
        return json_schema_format(model)
    return fmt if isinstance(fmt, (str, dict)) else None


__all__ = [
    "json_schema_format",
    "normalize_format",
    "output_type",
    "schema_name",
    "schema_of",
    "strict_json_schema",
]
