"""``toolkit demo``: run a generated system in memory and print every hop.

Works on any generated package: each service gets a handler that prints what
it received, and every publisher method is called once with a sample message
built from its class. Nothing here is specific to the bundled example.
"""

from __future__ import annotations

import datetime
import enum
import importlib
import inspect
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import msgspec

from toolkit.channels.base import Delivery
from toolkit.channels.memory import InMemoryTransport
from toolkit.config import import_generated
from toolkit.consumer import Consumer
from toolkit.dispatcher import Dispatcher
from toolkit.service_map import ServiceMap

__all__ = ["run_demo", "sample"]


def sample(tp: Any, name: str = "value") -> Any:
    """A plausible value of a generated type, as plain data (for msgspec.convert)."""
    return _sample(msgspec.inspect.type_info(tp), name)


def _sample(info: msgspec.inspect.Type, name: str) -> Any:
    mi = msgspec.inspect
    if isinstance(info, mi.StrType):
        return f"{name}@example.com" if "email" in name else name.replace("_", " ")
    if isinstance(info, mi.BoolType):
        return True
    if isinstance(info, mi.IntType):
        return 42
    if isinstance(info, mi.FloatType):
        return 1.5
    if isinstance(info, mi.DecimalType):
        return "19.90"
    if isinstance(info, mi.BytesType):
        return "ZGVtbw=="
    if isinstance(info, mi.DateTimeType):
        return datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC).isoformat()
    if isinstance(info, mi.DateType):
        return "2026-01-01"
    if isinstance(info, mi.TimeType):
        return "12:00:00"
    if isinstance(info, mi.UUIDType):
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    if isinstance(info, mi.EnumType):
        member: enum.Enum = next(iter(info.cls))
        return member.value
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    if isinstance(info, mi.ListType):
        return [_sample(info.item_type, name)]
    if isinstance(info, mi.DictType):
        return {"key": _sample(info.value_type, name)}
    if isinstance(info, mi.UnionType):
        non_null = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return _sample(non_null[0], name) if non_null else None
    if isinstance(info, mi.StructType):
        return {f.encode_name: _sample(f.type, f.name) for f in info.fields}
    return None


class _Printer:
    """Implements any handler Protocol: every ``on_*`` method prints the hop."""

    def __init__(self, service: str, out: TextIO) -> None:
        self._service = service
        self._out = out

    def __getattr__(self, name: str) -> Callable[[Any, Delivery], None]:
        if not name.startswith("on_"):
            raise AttributeError(name)

        def handle(message: Any, meta: Delivery) -> None:
            h = meta.headers
            self._out.write(
                f"  {h.source_service} --{h.kind} {h.routing_key}--> [{meta.channel}] --> "
                f"{self._service}.{name}({message!r})\n"
            )

        return handle


async def run_demo(output: Path, package: str, out: TextIO = sys.stdout) -> int:
    """Publish one sample of everything, consume everything, print each hop; returns messages handled."""
    generated = import_generated(output, package)
    service_map: ServiceMap = generated.SERVICE_MAP
    transport = InMemoryTransport()
    services = service_map.services
    modules = {s: importlib.import_module(f"{package}.{s}") for s in services}
    # A service that consumes nothing has no bind() (and one that sends nothing no publisher).
    dispatchers: dict[str, Dispatcher] = {
        s: m.bind(_Printer(s, out)) for s, m in modules.items() if hasattr(m, "bind")
    }
    consumers = [
        Consumer(transport, channel.name, dispatchers[service], consumer_name="demo")
        for channel in service_map.channels.values()
        for service in channel.consumers
        if service in dispatchers
    ]
    for consumer in consumers:
        await consumer.subscription()  # groups exist before anything is sent
    out.write(f"services: {', '.join(services)}\n")
    out.write(
        f"channels: {', '.join(f'{c.name} ({c.kind})' for c in service_map.channels.values())}\n\n"
    )
    for service, module in modules.items():
        prefix = "".join(p.capitalize() for p in service.split("_"))
        publisher_class = getattr(module, f"{prefix}Publisher", None)
        if publisher_class is None:
            continue
        publisher = publisher_class(transport)
        for name, method in sorted(inspect.getmembers(publisher, inspect.ismethod)):
            if not name.startswith(("send_", "publish_")):
                continue
            hints = inspect.get_annotations(method, eval_str=True)
            cls = next(
                iter(
                    v
                    for k, v in hints.items()
                    if k not in ("metadata", "caused_by", "message_id", "return")
                )
            )
            message = msgspec.convert(sample(cls), cls)
            result = await method(message, metadata={"demo": "true"})
            if name.startswith("send_"):
                out.write(f"{service}.{name}: {cls.__name__} sent, id {result}\n")
            else:
                where = ", ".join(result.channels) or "no channel (no subscriber matched)"
                out.write(f"{service}.{name}: {cls.__name__} -> {where}\n")
    out.write("\nconsuming:\n")
    handled = 0
    for consumer in consumers:
        stats = await consumer.run(until_empty=True)
        handled += stats.handled
        if stats.skipped or stats.rejected:
            out.write(
                f"  ({consumer.group} on {consumer.channel}: {stats.skipped} skipped, {stats.rejected} rejected)\n"
            )
    out.write(f"\n{handled} messages handled\n")
    return handled
