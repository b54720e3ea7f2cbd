package queue

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Leases. The owner key holds "<epoch>|<node id>|<url>" with a PX expiry;
// it lives in the room's hash tag, so each script touches one slot. Node
// heartbeats ("<prefix>:node:<id>", PX) live outside any room and are only
// read to tell a live owner (redirect) from a dead one (try later).

const acquireScript = `
-- KEYS: owner, epoch. ARGV: node id, url, ttl ms.
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, '|', 1, true)
  local rest = string.sub(cur, sep + 1)
  local sep2 = string.find(rest, '|', 1, true)
  if string.sub(rest, 1, sep2 - 1) ~= ARGV[1] then
    return {'owned', cur}
  end
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], string.format('%d|%s|%s', epoch, ARGV[1], ARGV[2]), 'PX', ARGV[3])
return {'ok', string.format('%d', epoch)}
`

const renewScript = `
-- KEYS: owner. ARGV: owner value, ttl ms.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'ok'}
end
return {'lost'}
`

const releaseScript = `
-- KEYS: owner. ARGV: owner value.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return {'ok'}
`

func ownerValue(epoch uint64, n Node) string {
	return strconv.FormatUint(epoch, 10) + "|" + n.ID + "|" + n.URL
}

func parseOwner(v string) (uint64, Node) {
	e, rest, _ := strings.Cut(v, "|")
	id, url, _ := strings.Cut(rest, "|")
	epoch, _ := strconv.ParseUint(e, 10, 64)
	return epoch, Node{ID: id, URL: url}
}

func (l *RedisLog) nodeKey(id string) string { return l.opts.Prefix + ":node:" + id }

// Renew extends the lease the caller got from Acquire under epoch. It goes
// through the autopipeliner: a server renews all its rooms at once, and the
// renewals share round trips.
func (l *RedisLog) Renew(ctx context.Context, room string, lease Lease, epoch uint64) error {
	k, err := l.keys(room)
	if err != nil {
		return err
	}
	var reply []any
	_, err = l.retry(ctx, "renew", room, func(ctx context.Context) error {
		reply, err = l.renewSc.run(ctx, l.ap, []string{k.owner}, []any{ownerValue(epoch, lease.Node), lease.TTL.Milliseconds()})
		return err
	})
	if err != nil {
		return err
	}
	if replyString(reply, 0) != "ok" {
		return ErrLeaseLost
	}
	return nil
}

// Release deletes the lease if it is still the caller's.
func (l *RedisLog) Release(ctx context.Context, room string, lease Lease, epoch uint64) error {
	if lease.TTL <= 0 {
		return nil
	}
	k, err := l.keys(room)
	if err != nil {
		return err
	}
	_, err = l.retry(ctx, "release", room, func(ctx context.Context) error {
		_, err := l.releaseSc.run(ctx, l.client, []string{k.owner}, []any{ownerValue(epoch, lease.Node)})
		return err
	})
	return err
}

// Heartbeat marks node alive for ttl.
func (l *RedisLog) Heartbeat(ctx context.Context, node Node, ttl time.Duration) error {
	_, err := l.retry(ctx, "heartbeat", "", func(ctx context.Context) error {
		return l.client.Set(ctx, l.nodeKey(node.ID), node.URL, ttl).Err()
	})
	return err
}
