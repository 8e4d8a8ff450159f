"""JSON Schemas of the messages, as msgspec reads and writes them on the wire.

Contracts, views and named structs become objects keyed by wire names (in
the schema's field order), enums string enums, named types ``$ref``s to
``#/components/schemas/<service>.<Class>``; the envelope's headers get a
schema of their own. Used by the AsyncAPI document.
"""

from __future__ import annotations

import base64
import inspect
from typing import Any

from codegen.model import EnumModel, FieldModel, StructModel
from codegen.python.pytext import doc_text
from codegen.types import DictType, ListType, NamedType, OptionalType, ScalarType, TypeExpr
from toolkit import wire

__all__ = [
    "enum_schema",
    "field_schema",
    "headers_schema",
    "plain_text",
    "schema_ref",
    "struct_schema",
    "type_schema",
]

_SCALAR_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "uuid": {"type": "string", "format": "uuid"},
    "decimal": {"type": "string", "format": "decimal"},
}


def plain_text(doc: str) -> str:
    """A description as the generated class's docstring shows it, reST ``code`` as Markdown `code`.

    Shaped as the docstring is (:func:`~codegen.python.pytext.doc_text`), and
    lines lose their common indentation (``inspect.cleandoc``).
    """
    return inspect.cleandoc(doc_text(doc)).replace("``", "`")


def schema_ref(service: str, name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{service}.{name}"}


def type_schema(expr: TypeExpr, service: str) -> dict[str, Any]:
    """The JSON Schema of a field type as msgspec writes it; named types are ``$ref``s."""
    if isinstance(expr, ScalarType):
        return dict(_SCALAR_SCHEMAS[expr.name])
    if isinstance(expr, NamedType):
        return schema_ref(service, expr.name)
    if isinstance(expr, ListType):
        return {"type": "array", "items": type_schema(expr.item, service)}
    if isinstance(expr, DictType):
        return {"type": "object", "additionalProperties": type_schema(expr.value, service)}
    if isinstance(expr, OptionalType):
        return {"anyOf": [type_schema(expr.inner, service), {"type": "null"}]}
    values = list(expr.values)
    if all(isinstance(v, str) for v in values):
        return {"type": "string", "enum": values}
    if all(isinstance(v, int) for v in values):
        return {"type": "integer", "enum": values}
    return {"enum": values}


def _wire_default(expr: TypeExpr, value: object) -> object:
    """A field default as it appears on the wire (bytes defaults are kept as text in the model)."""
    if value is None:
        return None
    if isinstance(expr, OptionalType):
        return _wire_default(expr.inner, value)
    if isinstance(expr, ScalarType) and expr.name == "bytes" and isinstance(value, str):
        return base64.b64encode(value.encode()).decode("ascii")
    if isinstance(expr, ListType) and isinstance(value, list):
        return [_wire_default(expr.item, v) for v in value]
    if isinstance(expr, DictType) and isinstance(value, dict):
        return {str(k): _wire_default(expr.value, v) for k, v in value.items()}
    return value


def field_schema(field: FieldModel, service: str) -> dict[str, Any]:
    schema = type_schema(field.type, service)
    extra: dict[str, Any] = {}
    if field.doc.strip():
        extra["description"] = field.doc.strip()
    if not field.required:
        extra["default"] = _wire_default(field.type, field.default)
    if field.name != field.wire_name:
        extra["x-python-name"] = field.name
    if not extra:
        return schema
    if "$ref" in schema:
        # draft-07 ignores keywords beside $ref; keep them by wrapping.
        return {"allOf": [schema], **extra}
    return {**schema, **extra}


def struct_schema(struct: StructModel, service: str) -> dict[str, Any]:
    """A contract, view or named struct: an object keyed by wire names, in schema order."""
    schema: dict[str, Any] = {"type": "object", "title": struct.class_name}
    description = plain_text(struct.doc)
    if description:
        schema["description"] = description
    schema["properties"] = {f.wire_name: field_schema(f, service) for f in struct.fields}
    required = [f.wire_name for f in struct.fields if f.required]
    if required:
        schema["required"] = required
    schema["x-toolkit-role"] = struct.role
    schema["x-toolkit-service"] = service
    if struct.routing_key:
        schema["x-toolkit-routing-key"] = struct.routing_key
    return schema


def enum_schema(enum: EnumModel, service: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "title": enum.class_name}
    description = plain_text(enum.doc)
    if description:
        schema["description"] = description
    schema["enum"] = [value for _, value in enum.members]
    schema["x-toolkit-role"] = "enum"
    schema["x-toolkit-service"] = service
    return schema


def headers_schema() -> dict[str, Any]:
    """The envelope's header fields: flat string fields beside ``body`` (docs/wire-format.md)."""
    text: dict[str, Any] = {"type": "string"}
    nonempty: dict[str, Any] = {"type": "string", "minLength": 1}
    properties: dict[str, dict[str, Any]] = {
        wire.F_MESSAGE_ID: {**nonempty, "description": "Unique id of this message."},
        wire.F_ROUTING_KEY: {
            **nonempty,
            "description": "Dotted name of the message; consumers route on it without decoding the body.",
        },
        wire.F_KIND: {"type": "string", "enum": [wire.COMMAND, wire.EVENT]},
        wire.F_SOURCE: {**nonempty, "description": "The service that sent the message."},
        wire.F_TARGET: {
            **text,
            "description": "Commands only: the service the command is addressed to.",
        },
        wire.F_TIMESTAMP: {
            **text,
            "pattern": "^[0-9]+$",
            "description": "Creation time in integer milliseconds since the Unix epoch; "
            "the receiver's clock when missing.",
        },
        wire.F_DELIVER_AT: {
            **text,
            "pattern": "^[0-9]+$",
            "description": "A scheduled message: when it is due, in integer milliseconds since "
            "the Unix epoch; the pipe holds it until then (docs/delivery.md).",
        },
        wire.F_PRIORITY: {
            **text,
            "pattern": "^[0-9]$",
            "default": "0",
            "description": "0 to 9: a consumer with a backlog takes higher priorities first; "
            "left out when 0 (docs/delivery.md).",
        },
        wire.F_CONTENT_TYPE: {
            **text,
            "default": wire.JSON,
            "description": "Media type of the body; left out when it is the default.",
        },
        wire.F_CORRELATION: {
            **text,
            "description": "Id of the first message of the conversation; left out when it equals message_id.",
        },
        wire.F_CAUSATION: {
            **text,
            "description": "Id of the message whose handler sent this one; left out for a first message.",
        },
        wire.F_METADATA: {
            **text,
            "contentMediaType": "application/json",
            "description": "User metadata: a JSON object of string values, written as one string.",
        },
        wire.F_TRACEPARENT: {
            **text,
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": "W3C trace context: the publishing span (www.w3.org/TR/trace-context); "
            "written when tracing is on, continued by the consumer's span.",
        },
        wire.F_TRACESTATE: {
            **text,
            "description": "W3C trace context: vendor trace state, beside traceparent only.",
        },
    }
    return {
        "type": "object",
        "title": "Headers",
        "description": "The envelope's header fields. On the wire a message is one flat map of "
        "string fields (a Redis stream entry): these headers plus `body`, the JSON payload. "
        "See docs/wire-format.md.",
        "properties": properties,
        "required": [
            wire.F_MESSAGE_ID,
            wire.F_ROUTING_KEY,
            wire.F_KIND,
            wire.F_SOURCE,
        ],
        "x-toolkit-role": "headers",
    }
