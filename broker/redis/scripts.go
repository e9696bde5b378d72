package redis

import goredis "github.com/redis/go-redis/v9"

// Lua runs inside Redis one script at a time, which is what makes a user's
// sequence, history and channel order agree. Numbers are formatted with
// %d: Lua 5.1 would print large ones in exponent notation. Sequences,
// epochs and the write mark stay below 2⁵³, where Lua numbers are exact.
//
// Keys: the meta hash (gen: the store's generation, wm: its write mark,
// raised by every push), a user's state hash (ep: epoch, g: the generation
// the epoch began in, seq, ack, b: bytes retained) and history stream
// (entries s: seq, a: action, p: payload; ids are the publishing node's
// clock in ms).

// generation compares the store's write mark with the highest this node
// has seen and starts a new generation when the store came back older or
// lost its meta hash. It leaves the mark in wm and the generation in gen.
//
//	KEYS[1] meta hash; ARGV[1] known write mark, ARGV[2] candidate generation
const generation = `
local known = tonumber(ARGV[1])
local wm = tonumber(redis.call('HGET', KEYS[1], 'wm') or '0')
local gen = redis.call('HGET', KEYS[1], 'gen')
if (not gen) or wm < known then
  gen = ARGV[2]
  wm = math.max(wm, known)
  redis.call('HSET', KEYS[1], 'gen', gen, 'wm', string.format('%d', wm))
end
`

// prelude checks the store against what this node has seen and makes sure
// the user has an epoch of the store's generation. A write mark below the
// highest this node has seen means the store came back older (a stale
// snapshot, a lagging replica) and a missing generation that it lost its
// data: either way a new generation begins, and with it a new epoch for
// every user at their next use, so that no sequence number is handed out
// twice in an epoch.
//
//	KEYS[1] meta hash, KEYS[2] state hash, KEYS[3] history stream
//	ARGV[1] known write mark, ARGV[2] candidate generation, ARGV[3] candidate epoch,
//	ARGV[4] state ttl s
const prelude = generation + `
local ep = redis.call('HGET', KEYS[2], 'ep')
if (not ep) or redis.call('HGET', KEYS[2], 'g') ~= gen then
  ep = ARGV[3]
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[2], 'ep', ep, 'g', gen, 'seq', '0', 'ack', '0', 'b', '0')
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
`

// trim drops the oldest entries while the stream holds too many, too many
// bytes or entries older than the cutoff, and keeps the byte count.
const trim = `
local function trim(size, maxBytes, cutoff)
  local n = redis.call('XLEN', KEYS[3])
  local b = tonumber(redis.call('HGET', KEYS[2], 'b') or '0')
  while n > 0 do
    local e = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
    local ms = tonumber(string.match(e[1], '^(%d+)'))
    if n <= size and b <= maxBytes and ms >= cutoff then break end
    b = b - string.len(e[2][6])
    redis.call('XDEL', KEYS[3], e[1])
    n = n - 1
  end
  redis.call('HSET', KEYS[2], 'b', string.format('%d', math.max(b, 0)))
end
`

// publishUser numbers a push to a user, keeps it and publishes it.
//
//	ARGV[5] channel, ARGV[6] user, ARGV[7] action, ARGV[8] payload,
//	ARGV[9] history size, ARGV[10] history bytes, ARGV[11] history ttl ms, ARGV[12] now ms
//	returns {epoch, seq, wm, gen}
var publishUser = goredis.NewScript(prelude + trim + `
wm = redis.call('HINCRBY', KEYS[1], 'wm', 1)
local seq = string.format('%d', redis.call('HINCRBY', KEYS[2], 'seq', 1))
local now = tonumber(ARGV[12])
local size = tonumber(ARGV[9])
if size > 0 and string.len(ARGV[8]) <= tonumber(ARGV[10]) then
  local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
  if top then now = math.max(now, tonumber(string.match(top[1], '^(%d+)'))) end
  redis.call('XADD', KEYS[3], string.format('%d', now) .. '-*', 's', seq, 'a', ARGV[7], 'p', ARGV[8])
  redis.call('HINCRBY', KEYS[2], 'b', string.len(ARGV[8]))
end
trim(size, tonumber(ARGV[10]), tonumber(ARGV[12]) - tonumber(ARGV[11]))
if redis.call('XLEN', KEYS[3]) > 0 then
  redis.call('PEXPIRE', KEYS[3], ARGV[11])
end
local wms = string.format('%d', wm)
redis.call('PUBLISH', ARGV[5], 'u:' .. ep .. ':' .. seq .. ':' .. wms .. ':' .. ARGV[7] .. ':' ..
  string.len(ARGV[6]) .. ':' .. ARGV[6] .. ARGV[8])
return {ep, seq, wms, gen}
`)

// cursor returns the user's position, starting an epoch when it has none.
//
//	returns {epoch, seq, wm, gen}
var cursor = goredis.NewScript(prelude + `
return {ep, redis.call('HGET', KEYS[2], 'seq'), string.format('%d', wm), gen}
`)

// history returns the user's retained pushes younger than the history ttl
// with its position. A client that holds more of the same epoch than the
// store proves the store came back older, and the store may already have
// numbered again what the client holds (in this epoch, for pushes the
// client never got): the user gets a new epoch, so that every client of
// the user is told, not only the first to resume.
//
//	ARGV[5] client epoch, ARGV[6] client seq, ARGV[7] max seq, ARGV[8] history ttl ms, ARGV[9] now ms
//	returns {epoch, last, wm, gen, entries}
var history = goredis.NewScript(prelude + `
local last = redis.call('HGET', KEYS[2], 'seq')
local from = tonumber(ARGV[6])
if ARGV[5] == ep and from > tonumber(last) and from <= tonumber(ARGV[7]) then
  ep = ARGV[3]
  last = '0'
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[2], 'ep', ep, 'g', gen, 'seq', '0', 'ack', '0', 'b', '0')
end
local cutoff = math.max(tonumber(ARGV[9]) - tonumber(ARGV[8]), 0)
local entries = redis.call('XRANGE', KEYS[3], string.format('%d', cutoff), '+')
return {ep, last, string.format('%d', wm), gen, entries}
`)

// check compares the store with this node's write mark without touching a
// user: the flusher runs it so that an idle node learns the mark and a
// store that came back older is noticed before the next push.
//
//	KEYS[1] meta hash; ARGV[1] known write mark, ARGV[2] candidate generation
//	returns {wm, gen}
var check = goredis.NewScript(generation + `
return {string.format('%d', wm), gen}
`)

// ack raises the user's acknowledged sequence within its epoch, never
// above the last sequence.
//
//	KEYS[1] state hash; ARGV[1] epoch, ARGV[2] seq, ARGV[3] state ttl s
var ack = goredis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'ep', 'seq', 'ack')
if st[1] ~= ARGV[1] then return 0 end
local seq = tonumber(ARGV[2])
if seq <= tonumber(st[2] or '0') and seq > tonumber(st[3] or '0') then
  redis.call('HSET', KEYS[1], 'ack', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 0
`)
