"""The Lua scripts of the Redis transport (registered once per client, run by EVALSHA).

Each script does what must happen atomically on the server, or in one round
trip: picking up due retries and idle entries, renewing the lease of a batch
in hand, scheduling a retry by the server's clock, trimming what every group
has acknowledged, appending a batch, leaving a group.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "APPEND",
    "FORGET_IDLE",
    "LEAVE",
    "OPEN_BAND",
    "READ_SEEN",
    "RENEW",
    "RETRY_LATER",
    "TICK",
    "TRIM_ACKED",
]

_SERVER_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# An XINFO reply item (name, value, name, value, ...) as a table by name.
_FIELDS = """
local function fields(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
"""

# Due retries first, then entries idle past the visibility timeout. Delayed
# entries are pending too; XAUTOCLAIM ... JUSTID moves them without counting a
# delivery, and they are left alone until due.
TICK: Final = (
    _SERVER_MS
    + """
local stream, delay, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local limit = tonumber(ARGV[3])
local out = {}
local function take(id)
  local claimed = redis.call('XCLAIM', stream, group, consumer, 0, id)
  local entry = claimed[1]
  if entry and entry[2] then
    local info = redis.call('XPENDING', stream, group, id, id, 1)
    out[#out + 1] = {entry[1], entry[2], info[1][4]}
  end
end
local due = redis.call('ZRANGEBYSCORE', delay, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', delay, id)
  take(id)
end
local cursor = ARGV[5]
if #out < limit then
  local r = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[4], cursor,
                      'COUNT', limit - #out, 'JUSTID')
  cursor = r[1]
  for _, id in ipairs(r[2]) do
    if not redis.call('ZSCORE', delay, id) then take(id) end
  end
end
local nxt = redis.call('ZRANGE', delay, 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then wait = math.max(tonumber(nxt[2]) - now, 0) end
return {cursor, out, wait}
"""
)

# Renews consumer ARGV[2]'s lease on entries ARGV[3..] of group ARGV[1]: XCLAIM
# with min-idle 0 by their owner resets their idle time, and JUSTID leaves
# the delivery count alone. An entry no longer pending for this consumer
# (acknowledged, or reclaimed by another after this one stalled) is not
# taken back: its id is returned.
RENEW: Final = """
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local lost = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', stream, group, id, id, 1)[1]
  if p and p[2] == consumer then
    redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
  else
    lost[#lost + 1] = id
  end
end
return lost
"""

RETRY_LATER: Final = (
    _SERVER_MS
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return now
"""
)

# Trim below the oldest entry some group still needs: its oldest pending
# entry, else the one after the last it was delivered.
TRIM_ACKED: Final = (
    _FIELDS
    + """
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local floor_ms, floor_seq
for _, item in ipairs(groups) do
  local g = fields(item)
  local id = g['last-delivered-id']
  local bump = 1
  if g['pending'] > 0 then
    id = redis.call('XPENDING', KEYS[1], g['name'], '-', '+', 1)[1][1]
    bump = 0
  end
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  ms, seq = tonumber(ms), tonumber(seq) + bump
  if floor_ms == nil or ms < floor_ms or (ms == floor_ms and seq < floor_seq) then
    floor_ms, floor_seq = ms, seq
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d-%d', floor_ms, floor_seq))
"""
)

# Appends a batch to one stream with one command and one reply (redis-py
# packs and parses pipelined commands one by one in Python, which costs more
# than everything else a publisher does). ARGV: the number of trim arguments,
# those arguments, then per entry its field count followed by its fields.
# Returns the number appended; on a failing XADD it stops and returns
# {entries appended before it, the error}, so that the client can tell the
# sends that were stored from those that were not.
APPEND: Final = """
local key = KEYS[1]
local ntrim = tonumber(ARGV[1])
local i = 2 + ntrim
local n = 0
local r
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  if ntrim == 0 then
    r = redis.pcall('XADD', key, '*', unpack(ARGV, i + 1, i + count))
  else
    -- unpack() expands fully only as the last argument of a call
    local args = {key}
    for j = 2, 1 + ntrim do args[#args + 1] = ARGV[j] end
    args[#args + 1] = '*'
    for j = i + 1, i + count do args[#args + 1] = ARGV[j] end
    r = redis.pcall('XADD', unpack(args))
  end
  if type(r) == 'table' and r.err then return {n, r.err} end
  i = i + count + 1
  n = n + 1
end
return n
"""

# A consumer that leaves with nothing pending is forgotten; one with pending
# (or delayed) entries stays so that they are reclaimed, not dropped.
LEAVE: Final = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""

# Consumers of group ARGV[1] that own nothing and have been idle ARGV[3] ms or
# more, except ARGV[2] (the caller): removed, their names returned. Checking
# and removing in one script: nothing can be delivered to one in between.
FORGET_IDLE: Final = (
    _FIELDS
    + """
local removed = {}
for _, item in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local c = fields(item)
  if c['name'] ~= ARGV[2] and c['pending'] == 0 and c['idle'] >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], c['name'])
    removed[#removed + 1] = c['name']
  end
end
return removed
"""
)

# Opens priority band ARGV[1] of a channel: KEYS[1] the channel's stream, KEYS[2]
# the band's stream, KEYS[3] the channel's set of bands. Every group of the
# channel's stream, and groups ARGV[2..] (those expected to consume it), get
# a group on the band at its start before the band is listed: a message sent to
# it is kept for each of them, whenever its consumers come to read it.
OPEN_BAND: Final = (
    _FIELDS
    + """
local groups = {}
for i = 2, #ARGV do groups[#groups + 1] = ARGV[i] end
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, item in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    groups[#groups + 1] = fields(item)['name']
  end
end
for _, group in ipairs(groups) do
  redis.pcall('XGROUP', 'CREATE', KEYS[2], group, '0', 'MKSTREAM')
end
return redis.call('SADD', KEYS[3], ARGV[1])
"""
)

# Deduplication's read (``toolkit.channels.redis.dedup``): XREADGROUP (without BLOCK:
# a script never blocks) of KEYS[1] for group ARGV[1], consumer ARGV[2], at most
# ARGV[3] entries, and the scores in the seen set KEYS[2] of their message ids: the
# read and the check in one round trip. Returns {entries, scores}, or nil.
READ_SEEN: Final = """
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                     'STREAMS', KEYS[1], '>')
if not r then return nil end
local entries = r[1][2]
local ids = {}
for i, entry in ipairs(entries) do
  local id, f = '', entry[2]
  for j = 1, #f, 2 do
    if f[j] == 'message_id' then id = f[j + 1] break end
  end
  ids[i] = id
end
local scores = {}
for i = 1, #ids, 1000 do
  -- unpack() has a limit of its own: a batch of any size, 1000 ids at a time
  local part = redis.call('ZMSCORE', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for k = 1, #part do scores[#scores + 1] = part[k] end
end
return {entries, scores}
"""
