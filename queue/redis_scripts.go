package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts of the Redis log. Each touches only the keys of one room
// (one hash tag, so one cluster slot) and runs atomically. A script's first
// line carries its name and version: changing a script means a new version
// (lh_append_v2 …), so servers of two releases running side by side never
// run each other's script under the same SHA.
//
// Numbers: Lua numbers are doubles, exact up to 2^53. Seqs and epochs are
// compared and added as numbers (2^53 entries is out of reach) and always
// written back with %d, never with Lua's default %.14g. State hashes (uint64)
// and room times (int64 ns) do not fit: the scripts only store and compare
// them as strings.

// appendScript appends one batch. See RedisLog.Append.
//
//	KEYS[1] log stream, KEYS[2] meta hash, KEYS[3] epoch string
//	ARGV[1] epoch, ARGV[2] first seq, ARGV[3] state hash after the batch,
//	ARGV[4] room time of the last entry, ARGV[5] now (unix ms), ARGV[6] game,
//	ARGV[7] index interval (ms), then per entry: ev, st.
//
// Replies: {"ok", last seq, index due (0|1)}, {"dup", last seq},
// {"fenced", current epoch}, {"conflict", last seq, reason}.
const appendScript = `-- lh_append_v1
local n = (#ARGV - 7) / 2
local cur = redis.call('GET', KEYS[3])
if cur ~= ARGV[1] then
  return {'fenced', cur or '0'}
end
local m = redis.call('HMGET', KEYS[2], 'seq', 'ixat')
local last = tonumber(m[1] or '0')
local first = tonumber(ARGV[2])
if first == last + 1 then
  for i = 0, n - 1 do
    redis.call('XADD', KEYS[1], string.format('%d-0', first + i), 'ev', ARGV[8 + 2 * i], 'st', ARGV[9 + 2 * i])
  end
  local newLast = string.format('%d', first + n - 1)
  local due = 0
  if tonumber(ARGV[5]) - tonumber(m[2] or '0') >= tonumber(ARGV[7]) then
    due = 1
    redis.call('HSET', KEYS[2], 'seq', newLast, 'hash', ARGV[3], 'at', ARGV[4], 'epoch', ARGV[1], 'active', ARGV[5], 'ixat', ARGV[5])
  else
    redis.call('HSET', KEYS[2], 'seq', newLast, 'hash', ARGV[3], 'at', ARGV[4], 'epoch', ARGV[1], 'active', ARGV[5])
  end
  if last == 0 then
    redis.call('HSETNX', KEYS[2], 'created', ARGV[5])
    if ARGV[6] ~= '' then
      redis.call('HSETNX', KEYS[2], 'game', ARGV[6])
    end
  end
  return {'ok', newLast, due}
end
local lastS = string.format('%d', last)
local keep = tonumber(redis.call('HGET', KEYS[2], 'first') or '1')
if first < keep or first + n - 1 > last then
  return {'conflict', lastS, 'batch does not follow the last seq'}
end
local got = redis.call('XRANGE', KEYS[1], string.format('%d-0', first), string.format('%d-0', first + n - 1))
if #got ~= n then
  return {'conflict', lastS, 'logged entries missing'}
end
for i = 1, n do
  local id, f = got[i][1], got[i][2]
  if id ~= string.format('%d-0', first + i - 1) or f[1] ~= 'ev' or f[2] ~= ARGV[6 + 2 * i] or f[3] ~= 'st' or f[4] ~= ARGV[7 + 2 * i] then
    return {'conflict', lastS, 'differs from the logged entry at ' .. string.format('%d', first + i - 1)}
  end
end
return {'dup', lastS}
`

// snapshotScript stores a snapshot and trims the log below the retention
// window. See RedisLog.SaveSnapshot.
//
//	KEYS[1] meta hash, KEYS[2] snap hash, KEYS[3] log stream
//	ARGV[1] seq, ARGV[2] state hash, ARGV[3] room time, ARGV[4] state,
//	ARGV[5] retain
//
// Replies: {"ok", first kept seq}, {"old", snapshot seq} (a newer or equal
// snapshot is already stored: nothing changes), {"conflict", last seq}.
const snapshotScript = `-- lh_snapshot_v1
local seq = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if seq > last then
  return {'conflict', string.format('%d', last)}
end
local have = redis.call('HGET', KEYS[2], 'seq')
if have and tonumber(have) >= seq then
  return {'old', have}
end
redis.call('HSET', KEYS[2], 'seq', ARGV[1], 'hash', ARGV[2], 'at', ARGV[3], 'state', ARGV[4])
local first = tonumber(redis.call('HGET', KEYS[1], 'first') or '1')
local retain = tonumber(ARGV[5])
if seq > retain then
  local keep = seq - retain + 1
  if keep > first then
    redis.call('XTRIM', KEYS[3], 'MINID', string.format('%d-0', keep))
    first = keep
    redis.call('HSET', KEYS[1], 'first', string.format('%d', first))
  end
end
return {'ok', string.format('%d', first)}
`

// script is a Lua script run by EVALSHA. Its SHA is computed locally; the
// first EVALSHA on a Redis that does not know it (a fresh or restarted
// server) gets NOSCRIPT, and the script is loaded and run again. Running it
// twice is safe: NOSCRIPT means it did not run.
type script struct {
	name, src string
	s         *redis.Script
}

func newScript(name, src string) script {
	return script{name: name, src: src, s: redis.NewScript(src)}
}

func (sc script) run(ctx context.Context, c redis.Scripter, keys []string, args []any) ([]any, error) {
	res, err := sc.s.EvalSha(ctx, c, keys, args...).Result()
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := sc.s.Load(ctx, c).Err(); err != nil {
			return nil, fmt.Errorf("load script %s: %w", sc.name, err)
		}
		res, err = sc.s.EvalSha(ctx, c, keys, args...).Result()
	}
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", sc.name, err)
	}
	arr, ok := res.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("script %s: unexpected reply %v", sc.name, res)
	}
	return arr, nil
}

// replyString returns arr[i] as a string ("" when absent).
func replyString(arr []any, i int) string {
	if i >= len(arr) {
		return ""
	}
	if s, ok := arr[i].(string); ok {
		return s
	}
	return fmt.Sprint(arr[i])
}
