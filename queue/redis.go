package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// RedisLog keeps room logs in Redis. See the package documentation for the
// key layout, the stamp format, the retry policy and what an ack is worth.
type RedisLog struct {
	opts   RedisOptions
	logger zerolog.Logger
	client *redis.Client
	// ap carries the appends beyond DirectAppends in flight.
	ap     *redis.AutoPipeliner
	direct atomic.Int64 // appends in flight on a connection of their own
	rooms  string       // key of the rooms index

	appendSc, snapSc, acquireSc, renewSc, releaseSc script
	stats                                           *redisStats
}

var _ Log = (*RedisLog)(nil)

// NewRedisLog validates opts, fills in defaults and returns a log. It does
// not talk to Redis: the first call does (see Ping and Persistence).
func NewRedisLog(opts RedisOptions) (*RedisLog, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ro, err := opts.redisClientOptions()
	if err != nil {
		return nil, err
	}
	l := &RedisLog{
		opts:      opts,
		logger:    opts.Logger,
		client:    redis.NewClient(ro),
		rooms:     opts.Prefix + ":rooms",
		appendSc:  newScript("lh_append_v1", appendScript),
		snapSc:    newScript("lh_snapshot_v1", snapshotScript),
		acquireSc: newScript("lh_acquire_v1", acquireScript),
		renewSc:   newScript("lh_renew_v1", renewScript),
		releaseSc: newScript("lh_release_v1", releaseScript),
		stats:     newRedisStats(opts.StatsWindow, time.Now()),
	}
	ap, err := l.client.AutoPipelineWithOptions(&redis.AutoPipelineOptions{
		MaxBatchSize:         300,
		MaxBatchBytes:        1 << 20, // a full room batch is ~150 KiB
		MaxConcurrentBatches: opts.AppendPipelines,
		// Appends of one room are never in flight together (its room loop
		// waits for each), so the order between pipelines does not matter;
		// a stale copy of a retried append is harmless (identical, hence
		// "dup", or fenced).
		Unordered: opts.AppendPipelines > 1,
	})
	if err != nil {
		_ = l.client.Close()
		return nil, fmt.Errorf("queue: autopipeline: %w", err)
	}
	l.ap = ap
	return l, nil
}

// Close closes the connections. Calls after Close fail.
func (l *RedisLog) Close() error {
	var errs []error
	errs = append(errs, l.ap.Close(), l.client.Close())
	return errors.Join(errs...)
}

// Ping checks that Redis answers, with the log's retries.
func (l *RedisLog) Ping(ctx context.Context) error {
	_, err := l.retry(ctx, "ping", "", func(ctx context.Context) error {
		return l.client.Ping(ctx).Err()
	})
	return err
}

// LoadScripts loads the log's scripts into Redis's script cache, so the
// first calls of a starting server do not each meet NOSCRIPT and pay a
// second round trip (they would still succeed: a script is loaded on
// NOSCRIPT, as after a Redis restart). serve calls it once at start; the
// ops commands, which never change Redis, do not.
func (l *RedisLog) LoadScripts(ctx context.Context) error {
	scripts := []script{l.appendSc, l.snapSc, l.acquireSc, l.renewSc, l.releaseSc}
	_, err := l.retry(ctx, "script load", "", func(ctx context.Context) error {
		// SCRIPT LOAD itself, not Script.Load: on a pipeline that would
		// take the not yet answered reply ("") for the script's SHA.
		pipe := l.client.Pipeline()
		cmds := make([]*redis.StringCmd, len(scripts))
		for i, sc := range scripts {
			cmds[i] = pipe.ScriptLoad(ctx, sc.src)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, sc := range scripts {
			if got := cmds[i].Val(); got != sc.s.Hash() {
				return fmt.Errorf("script %s: Redis names it %s, not %s", sc.name, got, sc.s.Hash())
			}
		}
		return nil
	})
	return err
}

// roomKeys are the keys of one room. The room name sits inside the hash tag
// braces, so all of them hash to one cluster slot.
type roomKeys struct {
	log, meta, epoch, snap, owner string
}

func (l *RedisLog) keys(room string) (roomKeys, error) {
	if !ValidRoom(room) {
		return roomKeys{}, fmt.Errorf("%w: %q", ErrBadRoom, room)
	}
	base := l.opts.Prefix + ":{" + room + "}:"
	return roomKeys{log: base + "log", meta: base + "meta", epoch: base + "epoch", snap: base + "snap", owner: base + "owner"}, nil
}

// Acquire takes the room: without a lease it increments the room's epoch;
// with one, a script (lh_acquire_v1) refuses while another node holds the
// room's lease (*OwnerError), else increments the epoch and sets the lease
// to this node under the new epoch. A retried call whose first reply was
// lost skips an epoch nobody holds, which only fences more. It also marks
// the room active in the rooms index and records when it was created.
func (l *RedisLog) Acquire(ctx context.Context, room string, lease Lease) (uint64, error) {
	k, err := l.keys(room)
	if err != nil {
		return 0, err
	}
	var epoch uint64
	var owned *OwnerError
	_, err = l.retry(ctx, "acquire", room, func(ctx context.Context) error {
		owned = nil
		if lease.TTL <= 0 {
			incr := l.client.Incr(ctx, k.epoch)
			if err := incr.Err(); err != nil {
				return err
			}
			epoch = uint64(incr.Val())
			return nil
		}
		reply, err := l.acquireSc.run(ctx, l.client, []string{k.owner, k.epoch},
			[]any{lease.Node.ID, lease.Node.URL, lease.TTL.Milliseconds()})
		if err != nil {
			return err
		}
		if replyString(reply, 0) == "owned" {
			owned = &OwnerError{Room: room}
			owned.Epoch, owned.Owner = parseOwner(replyString(reply, 1))
			return nil
		}
		epoch, err = strconv.ParseUint(replyString(reply, 1), 10, 64)
		return err
	})
	if err != nil {
		return 0, err
	}
	if owned != nil {
		alive, err := l.client.Exists(ctx, l.nodeKey(owned.Owner.ID)).Result()
		owned.Alive = err == nil && alive == 1
		return 0, owned
	}
	now := time.Now().UnixMilli()
	pipe := l.client.Pipeline()
	pipe.HSetNX(ctx, k.meta, "created", now)
	pipe.ZAddGT(ctx, l.rooms, redis.Z{Score: float64(now), Member: room})
	if _, err := pipe.Exec(ctx); err != nil {
		l.logger.Debug().Err(err).Str("room", room).Msg("rooms index not updated")
	}
	return epoch, nil
}

// Append makes b durable with one script call (lh_append_v1), retried on
// any error that leaves its outcome unknown: the script checks the epoch
// (else ErrFenced), appends when b follows the last seq, succeeds without
// writing when b is already logged with identical content (a retry whose
// first reply was lost), and refuses anything else (ErrConflict). A nil
// return means the batch is in Redis, as durable as its appendfsync makes it
// (see Persistence).
func (l *RedisLog) Append(ctx context.Context, room string, b Batch) error {
	k, err := l.keys(room)
	if err != nil {
		return err
	}
	if len(b.Records) == 0 {
		return nil
	}
	first := b.Records[0].Seq
	for i := range b.Records {
		if b.Records[i].Seq != first+uint64(i) || b.Records[i].Seq == 0 {
			return fmt.Errorf("%w: seq %d at position %d of a batch starting at %d", ErrConflict, b.Records[i].Seq, i, first)
		}
	}
	start := time.Now()
	args := l.appendArgs(b, start)
	keys := []string{k.log, k.meta, k.epoch}
	var reply []any
	_, err = l.retry(ctx, "append", room, func(ctx context.Context) error {
		var err error
		reply, err = l.appendSc.run(ctx, l.appender(), keys, args)
		l.direct.Add(-1)
		return err
	})
	if err == nil {
		err = appendOutcome(reply, b)
	}
	now := time.Now()
	switch {
	case err == nil:
		l.stats.appended(len(b.Records), now.Sub(start), now)
		if replyString(reply, 2) == "1" {
			l.index(ctx, room, now)
		}
	case errors.Is(err, ErrFenced):
		l.stats.fenced.Add(1)
	case errors.Is(err, ErrConflict):
		l.stats.conflicts.Add(1)
	default:
		l.stats.failed.Add(1)
	}
	return err
}

// appender picks the connection for one append attempt: a pooled one of
// its own while fewer than DirectAppends are in flight, else the
// autopipeliner. The caller decrements l.direct after the attempt.
func (l *RedisLog) appender() redis.Scripter {
	if l.direct.Add(1) <= int64(l.opts.DirectAppends) {
		return l.client
	}
	return l.ap
}

// appendArgs lays out ARGV for the append script. All stamps share one
// buffer, so a batch costs a few allocations, not one per record.
func (l *RedisLog) appendArgs(b Batch, now time.Time) []any {
	args := make([]any, 0, 7+2*len(b.Records))
	args = append(args,
		strconv.FormatUint(b.Epoch, 10),
		strconv.FormatUint(b.Records[0].Seq, 10),
		strconv.FormatUint(b.Hash, 10),
		strconv.FormatInt(b.Records[len(b.Records)-1].At, 10),
		strconv.FormatInt(now.UnixMilli(), 10),
		l.opts.Game,
		strconv.FormatInt(l.opts.IndexInterval.Milliseconds(), 10),
	)
	stamps := make([]byte, 0, 40*len(b.Records))
	for i := range b.Records {
		r := &b.Records[i]
		n := len(stamps)
		stamps = appendStamp(stamps, r.Stamp, r.At)
		args = append(args, r.Event, stamps[n:len(stamps):len(stamps)])
	}
	return args
}

// appendStamp encodes the st field: "<stamp counter>:<at>", both decimal.
func appendStamp(dst []byte, n uint64, at int64) []byte {
	dst = strconv.AppendUint(dst, n, 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, at, 10)
}

func parseStamp(s string) (n uint64, at int64, err error) {
	ns, ats, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("stamp %q: want <counter>:<at>", s)
	}
	if n, err = strconv.ParseUint(ns, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stamp %q: %w", s, err)
	}
	if at, err = strconv.ParseInt(ats, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stamp %q: %w", s, err)
	}
	return n, at, nil
}

func appendOutcome(reply []any, b Batch) error {
	first, last := b.Records[0].Seq, b.Records[len(b.Records)-1].Seq
	switch replyString(reply, 0) {
	case "ok", "dup":
		return nil
	case "fenced":
		return fmt.Errorf("%w: epoch %d, room at epoch %s", ErrFenced, b.Epoch, replyString(reply, 1))
	case "conflict":
		return fmt.Errorf("%w: batch %d..%d, log at %s: %s", ErrConflict, first, last, replyString(reply, 1), replyString(reply, 2))
	default:
		return fmt.Errorf("queue: append script: unexpected reply %v", reply)
	}
}

// index refreshes the room's score in the rooms index. The append script
// says when it is due (at most every IndexInterval), so this costs one
// extra round trip per room and interval. It is a single attempt: a missed
// refresh only leaves the ops view a little stale.
func (l *RedisLog) index(ctx context.Context, room string, now time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.OpTimeout)
	defer cancel()
	if err := l.client.ZAddGT(ctx, l.rooms, redis.Z{Score: float64(now.UnixMilli()), Member: room}).Err(); err != nil {
		l.logger.Debug().Err(err).Str("room", room).Msg("rooms index not refreshed")
	}
}

// Read returns records from..to (at most max, and at most MaxRead) with one
// atomic MULTI of HGET first + XRANGE, so a concurrent trim cannot slip
// between the check and the read.
func (l *RedisLog) Read(ctx context.Context, room string, from, to uint64, max int) ([]Record, error) {
	k, err := l.keys(room)
	if err != nil {
		return nil, err
	}
	if from == 0 {
		from = 1
	}
	count := int64(min(max, l.opts.MaxRead))
	var (
		firstS string
		msgs   []redis.XMessage
	)
	_, err = l.retry(ctx, "read", room, func(ctx context.Context) error {
		var (
			firstCmd *redis.StringCmd
			rangeCmd *redis.XMessageSliceCmd
		)
		_, err := l.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			firstCmd = p.HGet(ctx, k.meta, "first")
			if count > 0 && from <= to {
				rangeCmd = p.XRangeN(ctx, k.log, streamID(from), streamID(to), count)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		firstS = firstCmd.Val()
		if rangeCmd != nil {
			msgs = rangeCmd.Val()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	firstKept, err := parseSeqField(firstS, 1)
	if err != nil {
		return nil, fmt.Errorf("queue: meta of %s: first: %w", room, err)
	}
	if from < firstKept {
		return nil, fmt.Errorf("%w: asked from %d, oldest kept is %d", ErrTrimmed, from, firstKept)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	out := make([]Record, len(msgs))
	for i, m := range msgs {
		rec, err := decodeEntry(m)
		if err != nil {
			return nil, fmt.Errorf("queue: log of %s: %w", room, err)
		}
		// The stream holds first..last without gaps; anything else is a
		// damaged log, never something to hand to a replay.
		if rec.Seq != from+uint64(i) {
			return nil, fmt.Errorf("queue: log of %s: entry %s where seq %d belongs", room, m.ID, from+uint64(i))
		}
		out[i] = rec
	}
	return out, nil
}

func streamID(seq uint64) string { return strconv.FormatUint(seq, 10) + "-0" }

func decodeEntry(m redis.XMessage) (Record, error) {
	seqS, tail, ok := strings.Cut(m.ID, "-")
	if !ok || tail != "0" {
		return Record{}, fmt.Errorf("entry id %q: want <seq>-0", m.ID)
	}
	seq, err := strconv.ParseUint(seqS, 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("entry id %q: %w", m.ID, err)
	}
	ev, ok1 := m.Values["ev"].(string)
	st, ok2 := m.Values["st"].(string)
	if !ok1 || !ok2 {
		return Record{}, fmt.Errorf("entry %s: missing ev or st", m.ID)
	}
	n, at, err := parseStamp(st)
	if err != nil {
		return Record{}, fmt.Errorf("entry %s: %w", m.ID, err)
	}
	return Record{Seq: seq, Stamp: n, At: at, Event: []byte(ev)}, nil
}

// parseSeqField parses a decimal meta field; an absent field ("") is def.
func parseSeqField(s string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// Meta reads the room's meta hash and epoch in one round trip.
func (l *RedisLog) Meta(ctx context.Context, room string) (Meta, error) {
	k, err := l.keys(room)
	if err != nil {
		return Meta{}, err
	}
	var (
		fields []any
		epochS string
	)
	_, err = l.retry(ctx, "meta", room, func(ctx context.Context) error {
		pipe := l.client.Pipeline()
		hm := pipe.HMGet(ctx, k.meta, "seq", "hash", "at", "first")
		ep := pipe.Get(ctx, k.epoch)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		fields, epochS = hm.Val(), ep.Val()
		return nil
	})
	if err != nil {
		return Meta{}, err
	}
	return parseMeta(room, fields, epochS)
}

func parseMeta(room string, fields []any, epochS string) (Meta, error) {
	str := func(i int) string {
		s, _ := fields[i].(string)
		return s
	}
	var m Meta
	var errs []error
	num := func(name, s string, def uint64) uint64 {
		v, err := parseSeqField(s, def)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return v
	}
	m.LastSeq = num("seq", str(0), 0)
	m.LastHash = num("hash", str(1), 0)
	if s := str(2); s != "" {
		at, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("at: %w", err))
		}
		m.LastAt = at
	}
	m.FirstSeq = num("first", str(3), 1)
	m.Epoch = num("epoch", epochS, 0)
	if err := errors.Join(errs...); err != nil {
		return Meta{}, fmt.Errorf("queue: meta of %s: %w", room, err)
	}
	return m, nil
}

// SaveSnapshot stores s and trims the log below the retention window with
// one script call (lh_snapshot_v1). A snapshot not newer than the stored
// one changes nothing; one past the last seq is ErrConflict.
func (l *RedisLog) SaveSnapshot(ctx context.Context, room string, s Snapshot) error {
	k, err := l.keys(room)
	if err != nil {
		return err
	}
	keys := []string{k.meta, k.snap, k.log}
	args := []any{
		strconv.FormatUint(s.Seq, 10),
		strconv.FormatUint(s.Hash, 10),
		strconv.FormatInt(s.At, 10),
		s.State,
		strconv.FormatUint(l.opts.Retain, 10),
	}
	var reply []any
	_, err = l.retry(ctx, "snapshot", room, func(ctx context.Context) error {
		var err error
		reply, err = l.snapSc.run(ctx, l.client, keys, args)
		return err
	})
	if err != nil {
		return err
	}
	switch replyString(reply, 0) {
	case "ok", "old":
		return nil
	case "conflict":
		return fmt.Errorf("%w: snapshot at %d is past the log's last seq %s", ErrConflict, s.Seq, replyString(reply, 1))
	default:
		return fmt.Errorf("queue: snapshot script: unexpected reply %v", reply)
	}
}

// LoadSnapshot returns the room's latest snapshot.
func (l *RedisLog) LoadSnapshot(ctx context.Context, room string) (Snapshot, bool, error) {
	k, err := l.keys(room)
	if err != nil {
		return Snapshot{}, false, err
	}
	var fields []any
	_, err = l.retry(ctx, "load snapshot", room, func(ctx context.Context) error {
		var err error
		fields, err = l.client.HMGet(ctx, k.snap, "seq", "hash", "at", "state").Result()
		return err
	})
	if err != nil {
		return Snapshot{}, false, err
	}
	seqS, ok := fields[0].(string)
	if !ok {
		return Snapshot{}, false, nil
	}
	hashS, _ := fields[1].(string)
	atS, _ := fields[2].(string)
	state, _ := fields[3].(string)
	var s Snapshot
	var errs []error
	if s.Seq, err = strconv.ParseUint(seqS, 10, 64); err != nil {
		errs = append(errs, fmt.Errorf("seq: %w", err))
	}
	if s.Hash, err = strconv.ParseUint(hashS, 10, 64); err != nil {
		errs = append(errs, fmt.Errorf("hash: %w", err))
	}
	if s.At, err = strconv.ParseInt(atS, 10, 64); err != nil {
		errs = append(errs, fmt.Errorf("at: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return Snapshot{}, false, fmt.Errorf("queue: snapshot of %s: %w", room, err)
	}
	s.State = []byte(state)
	return s, true, nil
}

// Stats returns the append metrics: totals since creation, and rates and
// latency percentiles over the last StatsWindow.
func (l *RedisLog) Stats() RedisStats { return l.stats.snapshot(time.Now()) }
