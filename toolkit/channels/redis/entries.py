"""Stream entries read back: envelopes and dead letters.

An entry is the flat envelope of ``docs/wire-format.md``. Entries in exactly
the layout publishers write are read positionally, without building a dict
(:func:`parse_positional`); the rest go through :func:`parse_entry`, and what
is unusual there through ``Envelope.from_fields``, so errors read the same
whatever wrote the entry.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec

from toolkit.channels.base import DeadLetter, Delivery, too_large
from toolkit.envelope import Envelope, Headers, WireError
from toolkit.wire import COMMAND, EVENT, JSON

__all__ = [
    "DLQ_PREFIX",
    "F_ORIGINAL",
    "F_REPLAY_GROUP",
    "Unreadable",
    "dead_letter_args",
    "id_order",
    "pairs",
    "parse_dead_letter",
    "parse_entry",
    "parse_positional",
    "read_entries",
    "split_dead_letter",
]

#: the field a replayed dead letter carries: only this group handles it again
F_REPLAY_GROUP: Final = "replay_group"
#: dead-letter entries: the toolkit's fields, each named with this prefix...
DLQ_PREFIX: Final = "dlq_"
#: ...then this one (its value: how many field/value pairs follow), then the
#: original entry's fields exactly as they were. The position keeps the two
#: apart: a producer's own ``dlq_reason`` comes after this field, never before.
F_ORIGINAL: Final = "dlq_original"

_META: Final = msgspec.json.Decoder(dict[str, str])
B_MESSAGE_ID: Final = b"message_id"
B_ROUTING_KEY: Final = b"routing_key"
B_KIND: Final = b"kind"
B_SOURCE: Final = b"source_service"
B_TARGET: Final = b"target_service"
B_TIMESTAMP: Final = b"timestamp"
B_CONTENT_TYPE: Final = b"content_type"
B_CORRELATION: Final = b"correlation_id"
B_CAUSATION: Final = b"causation_id"
B_METADATA: Final = b"metadata"
B_BODY: Final = b"body"
B_REPLAY_GROUP: Final = F_REPLAY_GROUP.encode()
_B_ORIGINAL: Final = F_ORIGINAL.encode()
_B_DLQ: Final = DLQ_PREFIX.encode()


def parse_entry(fields: dict[bytes, bytes]) -> Envelope:
    """The envelope of a stream entry; raises :class:`WireError` like ``Envelope.from_fields``.

    A fast path for well-formed entries (what every publisher writes); anything
    unusual goes through ``Envelope.from_fields`` so errors read the same.
    """
    get = fields.get
    message_id = get(B_MESSAGE_ID)
    routing_key = get(B_ROUTING_KEY)
    raw_kind = get(B_KIND)
    source = get(B_SOURCE)
    body = get(B_BODY)
    if not (message_id and routing_key and raw_kind and source) or body is None:
        return Envelope.from_fields(fields)
    target = get(B_TARGET)
    timestamp = get(B_TIMESTAMP)
    content_type = get(B_CONTENT_TYPE)
    correlation = get(B_CORRELATION)
    causation = get(B_CAUSATION)
    meta = get(B_METADATA)
    known = 5
    for value in (target, timestamp, content_type, correlation, causation, meta):
        if value is not None:
            known += 1
    if known != len(fields):
        return Envelope.from_fields(fields)
    try:
        mid = message_id.decode()
        if raw_kind == b"event":
            kind: Any = EVENT
        elif raw_kind == b"command" and target:
            kind = COMMAND
        else:
            return Envelope.from_fields(fields)
        return Envelope(
            Headers(
                mid,
                routing_key.decode(),
                kind,
                source.decode(),
                int(timestamp) if timestamp is not None else int(time.time() * 1000),
                target.decode() if target is not None else "",
                content_type.decode() if content_type is not None else JSON,
                correlation.decode() if correlation else mid,
                causation.decode() if causation is not None else "",
                _META.decode(meta) if meta else {},
            ),
            body,
        )
    except Exception:
        # Whatever failed (bad UTF-8, a bad number, bad metadata): let from_fields word it.
        return Envelope.from_fields(fields)


def parse_positional(flat: Sequence[bytes]) -> Envelope | None:
    """The envelope of an entry in exactly the layout publishers write for plain
    events and commands (no optional headers), without building a dict; None
    for anything else (the general parser decides then)."""
    if flat[4] != B_KIND or flat[6] != B_SOURCE:
        return None
    kind: Any
    if len(flat) == 12:
        if flat[8] != B_TIMESTAMP or flat[5] != b"event":
            return None
        kind, raw_target, ts = EVENT, b"", flat[9]
    elif len(flat) == 14:
        if flat[8] != B_TARGET or flat[10] != B_TIMESTAMP or flat[5] != b"command":
            return None
        kind, raw_target, ts = COMMAND, flat[9], flat[11]
    else:
        return None
    try:
        mid = flat[1].decode()
        routing_key = flat[3].decode()
        source = flat[7].decode()
        target = raw_target.decode()
        timestamp = int(ts)
    except ValueError:
        return None
    if not (mid and routing_key and source) or (kind is COMMAND and not target):
        return None
    return Envelope(
        Headers(mid, routing_key, kind, source, timestamp, target, JSON, mid, "", {}),
        flat[-1],
    )


def pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    it = iter(flat)
    return dict(zip(it, it, strict=False))


def dead_letter_args(toolkit: Mapping[str, str], original: Sequence[bytes]) -> list[str | bytes]:
    """The fields of a dead-letter entry: ``dlq_<name>`` for each of the toolkit's
    fields, ``dlq_original <pairs>``, then ``original`` (a flat field/value list) as it is."""
    args: list[str | bytes] = []
    for name, value in toolkit.items():
        if name != "original":
            args += (DLQ_PREFIX + name, value)
    args += (F_ORIGINAL, str(len(original) // 2))
    args.extend(original)
    return args


def split_dead_letter(flat: Sequence[bytes]) -> tuple[dict[str, str], list[bytes]]:
    """The toolkit's fields (without the prefix) and the original entry (flat) of a dead letter.

    Dead letters written before ``dlq_original`` existed hold the original
    fields first, then the ``dlq_*`` ones: read those by the prefix.
    """
    toolkit: dict[str, str] = {}
    original: list[bytes] = []
    for i in range(0, len(flat) - 1, 2):
        name, value = flat[i], flat[i + 1]
        if name == _B_ORIGINAL:
            return toolkit, original + list(flat[i + 2 :])
        if name.startswith(_B_DLQ):
            toolkit[name[len(_B_DLQ) :].decode("utf-8", "replace")] = value.decode(
                "utf-8", "replace"
            )
        else:
            original += (name, value)
    return toolkit, original


def id_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id (``<ms>-<seq>``) as what orders it: entries of different
    streams (shards) by time."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def parse_dead_letter(entry_id: bytes, flat: Sequence[bytes]) -> DeadLetter:
    extra, original = split_dead_letter(flat)
    fields: dict[str, str | bytes] = {
        k.decode("utf-8", "replace"): v for k, v in pairs(original).items() if k != B_REPLAY_GROUP
    }
    try:
        envelope: Envelope | None = Envelope.from_fields(fields)
    except WireError:
        envelope = None
    reason = extra.pop("reason", "")
    group = extra.pop("group", "")
    return DeadLetter(entry_id.decode(), reason, group, envelope, fields, extra)


#: entries ``read_entries`` could not hand out: entry id -> (its fields, the
#: dead-letter reason; None: only to acknowledge, as nothing is left to handle)
Unreadable = dict[bytes, tuple[Sequence[bytes], str | None]]


def read_entries(
    entries: Iterable[Sequence[Any]],
    counts: list[int] | None,
    channel: str,
    max_bytes: int,
    group: bytes,
    unreadable: Unreadable,
) -> tuple[list[Delivery], bytes | None]:
    """The deliveries of a read (``XREADGROUP`` or a reclaim: ``counts`` per entry),
    and the last entry id; entries that cannot be handed out go into ``unreadable``.

    Publishers' plain layout takes the positional parser; anything else goes
    through the general one. Nothing an entry holds can raise out of here.
    """
    out: list[Delivery] = []
    last: bytes | None = None
    for index, (entry_id, flat) in enumerate(entries):
        last = entry_id
        if flat is None:
            # Deleted (XDEL) after it was delivered: nothing left to handle.
            unreadable[entry_id] = ((), None)
            continue
        try:
            if (
                len(flat) in (12, 14)
                and flat[0] == B_MESSAGE_ID
                and len(flat[-1]) <= max_bytes
                and flat[-2] == B_BODY
                and flat[2] == B_ROUTING_KEY
            ):
                fast = parse_positional(flat)
                if fast is not None:
                    count = 1 if counts is None else counts[index]
                    out.append(Delivery(fast, channel, entry_id.decode(), count))
                    continue
            fields = pairs(flat)
            if B_REPLAY_GROUP in fields and fields[B_REPLAY_GROUP] != group:
                unreadable[entry_id] = ((), None)
                continue
            body = fields.get(B_BODY)
            if body is not None and len(body) > max_bytes:
                unreadable[entry_id] = (flat, too_large(len(body), max_bytes))
                continue
            envelope = parse_entry(fields)
        except WireError as exc:
            unreadable[entry_id] = (flat, f"invalid envelope: {exc}")
            continue
        except Exception as exc:
            # Never a crashed consumer for one entry: whatever the parser met, it is
            # this entry's fault alone.
            reason = f"invalid envelope: {type(exc).__name__}: {exc}"
            unreadable[entry_id] = (flat, reason)
            continue
        out.append(
            Delivery(envelope, channel, entry_id.decode(), 1 if counts is None else counts[index])
        )
    return out, last
