"""The two Lua scripts that make ``RedisRelay`` fast: one call appends a batch, one reads one.

redis-py packs every command argument and parses every reply element in Python, so
one ``XADD`` per event (about ten arguments) and an ``XREAD`` reply of nested arrays
(five elements per entry) cost tens of microseconds per event. The scripts move that
work into Redis: :data:`APPEND` adds a whole batch (one argument per event) and
:data:`FETCH` returns the entries after an id as a single string, one line per entry:
``<id> <field> <JSON>`` (JSON text never holds a raw line break). Both run atomically.
"""

from __future__ import annotations

#: KEYS: log, alive, claim. ARGV: maxlen, tag, first position, ttl ms, "1" if the last
#: payload is the terminal, then one payload per entry. Returns the next position.
APPEND = """
local position = tonumber(ARGV[3])
local last = #ARGV
for i = 6, last do
  local field = 'e'
  if i == last and ARGV[5] == '1' then field = 'end' end
  local id = string.format('%d-%s', position, ARGV[2])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, field, ARGV[i])
  position = position + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[5] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return position
"""

#: KEYS: log, watched. ARGV: last id read ("0-0": none), count, idle timeout ms.
#: Refreshes ``watched`` and returns up to ``count`` entries after the id, one per line.
FETCH = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
local lines = {}
for i, entry in ipairs(entries) do
  local fields = entry[2]
  lines[i] = entry[1] .. ' ' .. fields[1] .. ' ' .. fields[2]
end
return table.concat(lines, '\\n')
"""


#: One entry as read: ``(id, field, payload)``; the field is ``e`` (an event) or ``end``.
Line = tuple[bytes, bytes, bytes]


def fetched(reply: bytes) -> list[Line]:
    """The entries of a :data:`FETCH` reply."""
    if not reply:
        return []
    return [_line(line) for line in reply.split(b"\n")]


def _line(line: bytes) -> Line:
    entry_id, field, payload = line.split(b" ", 2)
    return entry_id, field, payload
