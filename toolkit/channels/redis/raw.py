"""Commands whose replies the transport parses itself.

redis-py's reply callbacks build a dict per stream entry, which costs more
than the rest of the hot path; the transport's client skips them for these
commands and reads the replies as hiredis parsed them.
"""

from __future__ import annotations

from typing import Any, Final

import redis.asyncio

__all__ = ["RAW_COMMANDS", "execute", "raw_reply"]

# Commands whose replies we parse ourselves (redis-py's callbacks build
# dicts per entry, which costs more than the rest of the hot path).
RAW_COMMANDS: Final = ("XREADGROUP", "XRANGE", "XREVRANGE", "XPENDING", "XINFO GROUPS", "XADD")


def raw_reply(response: Any, **options: Any) -> Any:
    return response


async def execute(client: redis.asyncio.Redis, *args: Any) -> Any:
    """One command, reply as parsed by hiredis (redis-py leaves execute_command untyped)."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]
