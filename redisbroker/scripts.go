package redisbroker

import "github.com/redis/go-redis/v9"

// Lua runs inside Redis one script at a time, which is what makes a user's
// sequence, history and channel order agree. Numbers are formatted with
// %d: Lua 5.1 would print large ones in exponent notation. Sequences stay
// below 2⁵³ (wsgate raises them no further), where Lua numbers are exact.

// publishUser numbers a push to a user, keeps it and publishes it.
//
//	KEYS: state hash, history stream
//	ARGV: channel, user, action, payload, history size, history ttl ms, state ttl s
//	returns the sequence
var publishUser = redis.NewScript(`
local seq = string.format('%d', redis.call('HINCRBY', KEYS[1], 'seq', 1))
redis.call('EXPIRE', KEYS[1], ARGV[7])
if tonumber(ARGV[5]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], '*', 's', seq, 'a', ARGV[3], 'p', ARGV[4])
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d', now - tonumber(ARGV[6])))
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
redis.call('PUBLISH', ARGV[1], 'u:' .. seq .. ':' .. ARGV[3] .. ':' .. string.len(ARGV[2]) .. ':' .. ARGV[2] .. ARGV[4])
return seq
`)

// history returns the retained pushes younger than the history ttl and the
// last sequence, raising the sequence to after when after is above it.
//
//	KEYS: state hash, history stream
//	ARGV: after, max raise, state ttl s, history ttl ms
//	returns {last, entries}
var history = redis.NewScript(`
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local after = tonumber(ARGV[1])
if after > last and after <= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1])
end
if after > 0 or last > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = redis.call('XRANGE', KEYS[2], string.format('%d', math.max(now - tonumber(ARGV[4]), 0)), '+')
return {string.format('%d', last), entries}
`)

// ack raises the user's acknowledged sequence, never above the last one.
//
//	KEYS: state hash
//	ARGV: seq, state ttl s
var ack = redis.NewScript(`
local seq = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local acked = tonumber(redis.call('HGET', KEYS[1], 'ack') or '0')
if seq <= last and seq > acked then
  redis.call('HSET', KEYS[1], 'ack', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
`)
