package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ops getters, in the spirit of BullMQ's QueueGetters: read-only views for
// the rooms subcommand, dashboards and tests. None of them is on the path of
// an action.

// RoomActivity is one entry of the rooms index.
type RoomActivity struct {
	Room       string
	LastActive time.Time // as of the last index refresh (IndexInterval)
}

// Rooms lists rooms by last activity, most recent first, skipping offset
// and returning at most limit (and at most MaxRead).
func (l *RedisLog) Rooms(ctx context.Context, offset, limit int) ([]RoomActivity, error) {
	if offset < 0 || limit <= 0 {
		return nil, nil
	}
	limit = min(limit, l.opts.MaxRead)
	var zs []redis.Z
	_, err := l.retry(ctx, "rooms", "", func(ctx context.Context) error {
		var err error
		zs, err = l.client.ZRevRangeWithScores(ctx, l.rooms, int64(offset), int64(offset+limit-1)).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]RoomActivity, 0, len(zs))
	for _, z := range zs {
		name, _ := z.Member.(string)
		out = append(out, RoomActivity{Room: name, LastActive: time.UnixMilli(int64(z.Score))})
	}
	return out, nil
}

// RoomInfo describes one room's log for ops.
type RoomInfo struct {
	Room   string
	Exists bool // the room has keys in Redis

	LastSeq    uint64
	FirstSeq   uint64 // oldest kept entry (LastSeq+1 when none is)
	LastHash   uint64
	LastAt     int64  // room time of the last entry, ns
	Epoch      uint64 // current fencing epoch
	WriteEpoch uint64 // epoch of the last append
	// Owner is the lease holder ("<node id> <url>"), empty when the lease
	// has expired or was released.
	Owner       string
	StreamLen   int64 // entries in the stream (LastSeq-FirstSeq+1)
	SnapshotSeq uint64
	HasSnapshot bool
	Game        string
	Created     time.Time // first Acquire or append
	LastActive  time.Time // last append or Acquire (exact, unlike the index)
}

// RoomInfo reads everything about a room in one round trip.
func (l *RedisLog) RoomInfo(ctx context.Context, room string) (RoomInfo, error) {
	k, err := l.keys(room)
	if err != nil {
		return RoomInfo{}, err
	}
	var (
		meta   map[string]string
		epS    string
		xlen   int64
		snapS  string
		score  float64
		inIx   bool
		ownerS string
	)
	_, err = l.retry(ctx, "room info", room, func(ctx context.Context) error {
		pipe := l.client.Pipeline()
		hm := pipe.HGetAll(ctx, k.meta)
		ep := pipe.Get(ctx, k.epoch)
		xl := pipe.XLen(ctx, k.log)
		sn := pipe.HGet(ctx, k.snap, "seq")
		zs := pipe.ZScore(ctx, l.rooms, room)
		ow := pipe.Get(ctx, k.owner)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		meta, epS, xlen, snapS = hm.Val(), ep.Val(), xl.Val(), sn.Val()
		score, inIx = zs.Val(), zs.Err() == nil
		ownerS = ow.Val()
		return nil
	})
	if err != nil {
		return RoomInfo{}, err
	}
	m, err := parseMeta(room, []any{meta["seq"], meta["hash"], meta["at"], meta["first"]}, epS)
	if err != nil {
		return RoomInfo{}, err
	}
	info := RoomInfo{
		Room:      room,
		Exists:    len(meta) > 0 || epS != "" || xlen > 0,
		LastSeq:   m.LastSeq,
		FirstSeq:  m.FirstSeq,
		LastHash:  m.LastHash,
		LastAt:    m.LastAt,
		Epoch:     m.Epoch,
		StreamLen: xlen,
		Game:      meta["game"],
	}
	if ownerS != "" {
		_, n := parseOwner(ownerS)
		info.Owner = n.ID + " " + n.URL
	}
	var errs []error
	if info.WriteEpoch, err = parseSeqField(meta["epoch"], 0); err != nil {
		errs = append(errs, fmt.Errorf("epoch: %w", err))
	}
	if snapS != "" {
		info.HasSnapshot = true
		if info.SnapshotSeq, err = strconv.ParseUint(snapS, 10, 64); err != nil {
			errs = append(errs, fmt.Errorf("snapshot seq: %w", err))
		}
	}
	if info.Created, err = msTime(meta["created"]); err != nil {
		errs = append(errs, fmt.Errorf("created: %w", err))
	}
	if info.LastActive, err = msTime(meta["active"]); err != nil {
		errs = append(errs, fmt.Errorf("active: %w", err))
	}
	if inIx && time.UnixMilli(int64(score)).After(info.LastActive) {
		info.LastActive = time.UnixMilli(int64(score)) // an Acquire after the last append
	}
	if err := errors.Join(errs...); err != nil {
		return RoomInfo{}, fmt.Errorf("queue: room info of %s: %w", room, err)
	}
	return info, nil
}

func msTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// Persistence is what Redis's configuration makes an acked append worth.
type Persistence struct {
	AppendOnly  bool   // CONFIG appendonly
	AppendFsync string // CONFIG appendfsync: always, everysec or no
	// CrashSafe: an acked append survives a crash of Redis or its machine.
	CrashSafe bool
	// Summary says the same in one sentence, for the startup log and the
	// README.
	Summary string
}

// Persistence reads appendonly and appendfsync (CONFIG GET; a managed Redis
// that disables CONFIG gets an error, and the caller should say durability
// is unknown).
func (l *RedisLog) Persistence(ctx context.Context) (Persistence, error) {
	var cfg map[string]string
	_, err := l.retry(ctx, "config get", "", func(ctx context.Context) error {
		var err error
		cfg, err = l.client.ConfigGet(ctx, "append*").Result()
		return err
	})
	if err != nil {
		return Persistence{}, err
	}
	p := Persistence{AppendOnly: cfg["appendonly"] == "yes", AppendFsync: cfg["appendfsync"]}
	switch {
	case !p.AppendOnly:
		p.Summary = "not crash-safe: appendonly is off, so a Redis crash loses every append since the last RDB save"
	case p.AppendFsync == "always":
		p.CrashSafe = true
		p.Summary = "an ack survives a Redis crash: appendfsync always fsyncs the AOF before Redis replies"
	case p.AppendFsync == "everysec":
		p.Summary = "up to about 1 s of acked appends (2 s when the disk is slow) may be lost on a Redis crash: appendfsync everysec"
	default:
		p.Summary = fmt.Sprintf("appendfsync %s leaves flushing to the OS: up to about 30 s of acked appends may be lost if the Redis machine crashes", p.AppendFsync)
	}
	return p, nil
}
