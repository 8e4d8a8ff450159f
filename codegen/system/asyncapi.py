"""An AsyncAPI 3.0 document of the whole system, built from the typed model.

Pure: :func:`build_asyncapi` returns a dict and :func:`asyncapi_json` its
text; only ``toolkit docs`` writes files.

What goes where:

* **channels**: one per channel of the service map, ``address`` = the channel
  name; its ``messages`` are every routing key that can arrive on it (the
  commands of the service it carries commands for, and every event that one of
  its subscriptions matches, publisher filters applied).
* **operations**: ``send`` for each publisher method (a command to its target's
  channel; an event to each channel that subscribes to it), ``receive`` for
  each handler method (on each channel the key arrives on for that service).
  The id is ``<service>.<method>.<channel>``, after the generated method names.
* **components.messages**: one per routing key, named by it; ``payload`` is
  the owner's contract, ``headers`` the envelope's wire fields.
* **components.schemas**: JSON Schemas of every contract, view and named type,
  named ``<service>.<Class>``, plus ``toolkit.Headers``. A consumer's view (or
  a sender's) is linked from its operation as ``x-toolkit-view``: the
  message on the wire is the contract; the view is how that service reads it.

Maps are sorted by name; struct properties keep the schema's field order and
use wire names. Nothing depends on the clock or the working folder.
"""

from __future__ import annotations

import base64
import inspect
import json
from typing import Any, Literal

import msgspec

from codegen.model import EnumModel, FieldModel, StructModel, SystemModel
from codegen.types import (
    DictType,
    ListType,
    NamedType,
    OptionalType,
    ScalarType,
    TypeExpr,
)
from toolkit import wire
from toolkit.routing import event_channels

__all__ = [
    "ASYNCAPI_VERSION",
    "HEADERS_SCHEMA_NAME",
    "Flow",
    "asyncapi_json",
    "build_asyncapi",
    "channel_messages",
    "enum_schema",
    "field_schema",
    "headers_schema",
    "plain_text",
    "schema_ref",
    "struct_schema",
    "system_flows",
    "type_schema",
    "unrouted_events",
]

ASYNCAPI_VERSION = "3.0.0"
HEADERS_SCHEMA_NAME = "toolkit.Headers"

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


# -- who sends and receives what, where -----------------------------------------------


class Flow(msgspec.Struct, frozen=True):
    """One service sending or receiving one routing key on one channel."""

    channel: str
    action: Literal["send", "receive"]
    service: str
    routing_key: str
    kind: Literal["command", "event"]
    #: the generated publisher or handler method
    method: str
    #: the class the service uses for it (its view, or the owner's contract)
    class_name: str
    #: the service's own view struct, None when it uses the contract
    view: StructModel | None


def system_flows(system: SystemModel) -> tuple[Flow, ...]:
    """Every send and receive of the system, sorted by channel, action, service, key."""
    command_channel = dict(system.command_routes)
    owners = {m.routing_key: m.owner for m in system.messages}
    views = {(key, service): view for key, service, view in system.views}
    flows: list[Flow] = []
    for svc in system.services:
        own_routes = [r for r in system.event_routes if r.subscriber == svc.name]
        for pub in svc.publishers:
            if pub.kind == "command":
                channels: list[str] = (
                    [command_channel[pub.target_service]]
                    if pub.target_service in command_channel
                    else []
                )
            else:
                channels = list(event_channels(system.event_routes, pub.routing_key, svc.name))
            for channel in channels:
                flows.append(
                    Flow(
                        channel,
                        "send",
                        svc.name,
                        pub.routing_key,
                        pub.kind,
                        pub.method_name,
                        pub.class_name,
                        views.get((pub.routing_key, svc.name)),
                    )
                )
        for handler in svc.handlers:
            key = handler.routing_key
            if handler.kind == "command":
                channels = [command_channel[svc.name]] if svc.name in command_channel else []
            else:
                channels = list(event_channels(own_routes, key, owners.get(key, "")))
            for channel in channels:
                flows.append(
                    Flow(
                        channel,
                        "receive",
                        svc.name,
                        key,
                        handler.kind,
                        handler.method_name,
                        handler.class_name,
                        views.get((key, svc.name)),
                    )
                )
    return tuple(sorted(flows, key=lambda f: (f.channel, f.action, f.service, f.routing_key)))


def channel_messages(system: SystemModel) -> dict[str, tuple[str, ...]]:
    """Channel name -> every routing key that can arrive on it, sorted."""
    found: dict[str, set[str]] = {c.name: set() for c in system.channels}
    command_channel = dict(system.command_routes)
    for message in system.messages:
        if message.kind == "command":
            channel = command_channel.get(message.owner)
            if channel is not None:
                found.setdefault(channel, set()).add(message.routing_key)
        else:
            for channel in event_channels(system.event_routes, message.routing_key, message.owner):
                found.setdefault(channel, set()).add(message.routing_key)
    return {name: tuple(sorted(keys)) for name, keys in sorted(found.items())}


def unrouted_events(system: SystemModel) -> tuple[str, ...]:
    """Events no channel subscribes to: publishing them sends nothing."""
    arriving = {key for keys in channel_messages(system).values() for key in keys}
    return tuple(
        m.routing_key
        for m in system.messages
        if m.kind == "event" and m.routing_key not in arriving
    )


# -- JSON Schemas --------------------------------------------------------------------


def plain_text(doc: str) -> str:
    """A description as the generated class's docstring shows it, reST ``code`` as Markdown `code`.

    Lines lose trailing blanks and their common indentation (``inspect.cleandoc``).
    """
    lines = [line.rstrip() for line in doc.strip().splitlines()]
    return inspect.cleandoc("\n".join(lines)).replace("``", "`")


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


# -- the document --------------------------------------------------------------------


def _components(system: SystemModel) -> dict[str, Any]:
    schemas: dict[str, Any] = {HEADERS_SCHEMA_NAME: headers_schema()}
    for svc in system.services:
        for enum in svc.enums:
            schemas[f"{svc.name}.{enum.class_name}"] = enum_schema(enum, svc.name)
        for struct in svc.structs:
            schemas[f"{svc.name}.{struct.class_name}"] = struct_schema(struct, svc.name)
    messages: dict[str, Any] = {}
    unrouted = set(unrouted_events(system))
    for message in system.messages:
        contract = message.contract
        description = plain_text(contract.doc)
        if message.routing_key in unrouted:
            description += "\n\nNo channel subscribes to it: publishing it sends nothing."
        summary = description.split("\n\n", 1)[0].replace("\n", " ")
        extra: dict[str, Any] = {
            wire.F_ROUTING_KEY: {"const": message.routing_key},
            wire.F_KIND: {"const": message.kind},
        }
        required: list[str] = []
        if message.kind == "command":
            extra[wire.F_TARGET] = {"const": message.owner}
            required.append(wire.F_TARGET)
        overlay: dict[str, Any] = {"type": "object", "properties": extra}
        if required:
            overlay["required"] = required
        messages[message.routing_key] = {
            "name": message.routing_key,
            "title": contract.class_name,
            "summary": summary,
            "description": description,
            "contentType": wire.JSON,
            "headers": {
                "type": "object",
                "allOf": [{"$ref": f"#/components/schemas/{HEADERS_SCHEMA_NAME}"}, overlay],
            },
            "payload": schema_ref(message.owner, contract.class_name),
            "tags": [{"name": message.owner}],
            "x-toolkit-kind": message.kind,
            "x-toolkit-owner": message.owner,
        }
    return {
        "schemas": dict(sorted(schemas.items())),
        "messages": dict(sorted(messages.items())),
    }


def _channels(system: SystemModel) -> dict[str, Any]:
    keys_by_channel = channel_messages(system)
    commands_for = {channel: service for service, channel in system.command_routes}
    channels: dict[str, Any] = {}
    for channel in system.channels:
        kind_text = (
            f"Queue channel: one consumer group ({', '.join(channel.consumers)}); "
            "its consumers share the work."
            if channel.kind == "queue"
            else f"Stream channel: one consumer group per service ({', '.join(channel.consumers)}); "
            "each service sees every message."
        )
        description = f"{channel.description}\n\n{kind_text}" if channel.description else kind_text
        subscriptions: list[dict[str, Any]] = []
        for route in system.event_routes:
            if route.channel != channel.name:
                continue
            sub: dict[str, Any] = {"subscriber": route.subscriber, "keys": list(route.keys)}
            if route.include_publishers is not None:
                sub["include_publishers"] = list(route.include_publishers)
            if route.exclude_publishers is not None:
                sub["exclude_publishers"] = list(route.exclude_publishers)
            subscriptions.append(sub)
        entry: dict[str, Any] = {
            "address": channel.name,
            "title": channel.name,
            "description": description,
            "messages": {
                key: {"$ref": f"#/components/messages/{key}"}
                for key in keys_by_channel.get(channel.name, ())
            },
            "x-toolkit-kind": channel.kind,
            "x-toolkit-consumers": list(channel.consumers),
        }
        if channel.name in commands_for:
            entry["x-toolkit-commands-for"] = commands_for[channel.name]
        if subscriptions:
            entry["x-toolkit-subscriptions"] = subscriptions
        channels[channel.name] = entry
    return channels


def _operations(system: SystemModel) -> dict[str, Any]:
    owners = {m.routing_key: m.owner for m in system.messages}
    docs: dict[tuple[str, str], str] = {}
    for svc in system.services:
        for pub in svc.publishers:
            docs[(svc.name, pub.method_name)] = pub.doc
        for handler in svc.handlers:
            docs[(svc.name, handler.method_name)] = handler.doc
    operations: dict[str, Any] = {}
    for flow in system_flows(system):
        key, owner = flow.routing_key, owners.get(flow.routing_key, "")
        if flow.action == "send":
            summary = (
                f"{flow.service} sends command `{key}` to {owner}."
                if flow.kind == "command"
                else f"{flow.service} publishes event `{key}`."
            )
        else:
            summary = (
                f"{flow.service} handles command `{key}`."
                if flow.kind == "command"
                else f"{flow.service} handles event `{key}` from {owner}."
            )
        if flow.view is not None:
            summary += f" It {'writes' if flow.action == 'send' else 'reads'} it as its own view {flow.class_name}."
        op: dict[str, Any] = {
            "action": flow.action,
            "channel": {"$ref": f"#/channels/{flow.channel}"},
            "title": f"{flow.service}.{flow.method}",
            "summary": summary,
        }
        doc = docs.get((flow.service, flow.method), "").strip()
        if doc:
            op["description"] = doc
        op["messages"] = [{"$ref": f"#/channels/{flow.channel}/messages/{key}"}]
        op["tags"] = [{"name": flow.service}]
        op["x-toolkit-service"] = flow.service
        op["x-toolkit-method"] = flow.method
        op["x-toolkit-class"] = flow.class_name
        if flow.view is not None:
            op["x-toolkit-view"] = schema_ref(flow.service, flow.view.class_name)
        operations[f"{flow.service}.{flow.method}.{flow.channel}"] = op
    return dict(sorted(operations.items()))


def build_asyncapi(system: SystemModel, *, title: str = "System map") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``system`` as plain data (deterministic)."""
    services = "\n".join(
        f"- **{svc.name}**" + (f": {svc.description.strip()}" if svc.description.strip() else "")
        for svc in system.services
    )
    description = (
        "Every service, channel and message of the system: generated by `toolkit docs` "
        "from the schema files (`info.version` is a hash of their text). Do not edit.\n\n"
        f"Services:\n\n{services}\n\n"
        "A consumer may read a message through its own view class; such an operation links "
        "the view's schema as `x-toolkit-view`. Routing-key patterns: `*` matches one or more "
        "characters, dots included."
    )
    info: dict[str, Any] = {
        "title": title,
        "version": system.sources_hash,
        "description": description,
        "tags": [
            {"name": svc.name, "description": svc.description.strip()}
            if svc.description.strip()
            else {"name": svc.name}
            for svc in system.services
        ],
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": info,
        "defaultContentType": wire.JSON,
        "channels": _channels(system),
        "operations": _operations(system),
        "components": _components(system),
    }


def asyncapi_json(system: SystemModel, *, title: str = "System map") -> str:
    """:func:`build_asyncapi` as JSON text: two-space indent, UTF-8, trailing newline."""
    return json.dumps(build_asyncapi(system, title=title), indent=2, ensure_ascii=False) + "\n"
