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

import json
from typing import Any

from codegen.model import SystemModel
from codegen.system.flows import channel_messages, system_flows, unrouted_events
from codegen.system.jsonschema import (
    enum_schema,
    headers_schema,
    plain_text,
    schema_ref,
    struct_schema,
)
from toolkit import wire

__all__ = ["ASYNCAPI_VERSION", "HEADERS_SCHEMA_NAME", "asyncapi_json", "build_asyncapi"]

ASYNCAPI_VERSION = "3.0.0"
HEADERS_SCHEMA_NAME = "toolkit.Headers"


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
        if message.priority:
            messages[message.routing_key]["x-toolkit-priority"] = message.priority
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
    #: (service, handler method) -> deduplication window in seconds
    windows: dict[tuple[str, str], float] = {}
    for svc in system.services:
        for pub in svc.publishers:
            docs[(svc.name, pub.method_name)] = pub.doc
        for handler in svc.handlers:
            docs[(svc.name, handler.method_name)] = handler.doc
            if handler.deduplicate is not None:
                windows[(svc.name, handler.method_name)] = handler.deduplicate
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
        window = windows.get((flow.service, flow.method)) if flow.action == "receive" else None
        if window is not None:
            op["x-toolkit-deduplicate-seconds"] = window
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
