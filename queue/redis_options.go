package queue

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/rs/zerolog"
)

// RedisOptions configure a RedisLog. Zero values take the documented
// defaults; NewRedisLog fills them in and validates the result.
type RedisOptions struct {
	// URL of the Redis server, redis://[user:password@]host:port/db (or
	// rediss:// for TLS). Exactly one of URL and Redis is required.
	URL string
	// Redis are go-redis options, used instead of URL. They are copied;
	// the log sets MaxRetries (always -1: it retries itself, see Append),
	// PoolSize, PipelinePoolSize, DialTimeout, DialerRetries, ReadTimeout,
	// WriteTimeout, PoolTimeout, ContextTimeoutEnabled and
	// MaintNotificationsConfig from the fields below.
	Redis *redis.Options

	// Prefix starts every key: "<Prefix>:{room}:log" and so on. Default
	// "lh". It may not contain '{', '}' or whitespace, so a room's keys
	// keep their hash tag.
	Prefix string
	// Game is recorded in a room's meta on its first append, for ops.
	// Default "": not recorded.
	Game string

	// DirectAppends is how many appends may run at once on a pooled
	// connection of their own. An append beyond that joins go-redis's
	// autopipeliner, where the appends of many rooms travel together, so
	// Redis reads and answers many per system call and no room waits for a
	// connection. Measured (BENCHMARKS.md): with batches of 100 entries a
	// connection per append is fastest up to tens of rooms appending at
	// once; with the small batches of many game rooms (a duel room's batch
	// is one or two actions) pipelining wins from a few dozen rooms on.
	// Default 16.
	DirectAppends int
	// AppendPipelines is how many pipelines of appends may be in flight at
	// once. Default 8.
	AppendPipelines int
	// PoolSize is the number of pooled connections, shared by direct
	// appends and everything else (acquire, reads, snapshots, getters).
	// Default DirectAppends + 32; at least DirectAppends + 1.
	PoolSize int
	// DialTimeout bounds connecting to Redis. Default 1s.
	DialTimeout time.Duration
	// OpTimeout bounds one attempt (one round trip) of any call. Default
	// 2s, well above an fsync-always append of a full batch.
	OpTimeout time.Duration
	// RetryDeadline bounds a call with all its retries; a shorter context
	// deadline wins. Default 4s, below the sequencer's 5s LogTimeout so the
	// log, not the caller's context, reports the last error.
	RetryDeadline time.Duration
	// MinBackoff is the wait before the first retry; it doubles on each
	// further retry up to MaxBackoff, with full jitter so rooms that failed
	// together do not retry together. Defaults 2ms and 250ms.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// Retain is how many entries up to and including the latest snapshot
	// are kept so clients can resume with since; older ones are trimmed
	// (XTRIM MINID) when the snapshot is saved. Default 10,000, as
	// MemoryOptions.
	Retain uint64
	// MaxRead caps the records one Read (and the rooms one Rooms) returns,
	// so one call cannot pull an unbounded reply through the pool. Default
	// 10,000.
	MaxRead int
	// IndexInterval is how often at most a room's score in the rooms index
	// ("<Prefix>:rooms") is refreshed by its appends. The index lives in
	// another cluster slot than the room, so it is not written by the
	// append script but by a separate ZADD, and only this often. Default
	// 1s.
	IndexInterval time.Duration
	// StatsWindow is the span Stats' rates and latency percentiles cover.
	// Default 1m.
	StatsWindow time.Duration

	// Logger receives retries (debug) and given-up calls (warn). Default:
	// disabled.
	Logger zerolog.Logger
}

func (o *RedisOptions) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "lh"
	}
	if o.DirectAppends == 0 {
		o.DirectAppends = 16
	}
	if o.AppendPipelines == 0 {
		o.AppendPipelines = 8
	}
	if o.PoolSize == 0 {
		o.PoolSize = o.DirectAppends + 32
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 2 * time.Second
	}
	if o.RetryDeadline == 0 {
		o.RetryDeadline = 4 * time.Second
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 2 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 250 * time.Millisecond
	}
	if o.Retain == 0 {
		o.Retain = 10_000
	}
	if o.MaxRead == 0 {
		o.MaxRead = 10_000
	}
	if o.IndexInterval == 0 {
		o.IndexInterval = time.Second
	}
	if o.StatsWindow == 0 {
		o.StatsWindow = time.Minute
	}
}

// validate reports every problem at once. It runs after setDefaults, so a
// zero is never a problem; a negative value or a contradiction is.
func (o *RedisOptions) validate() error {
	var errs []error
	switch {
	case o.URL == "" && o.Redis == nil:
		errs = append(errs, errors.New("URL or Redis: one is required"))
	case o.URL != "" && o.Redis != nil:
		errs = append(errs, errors.New("URL and Redis: set only one"))
	}
	if strings.ContainsAny(o.Prefix, "{} \t\r\n") {
		errs = append(errs, fmt.Errorf("Prefix: %q may not contain '{', '}' or whitespace", o.Prefix))
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"DirectAppends", o.DirectAppends}, {"AppendPipelines", o.AppendPipelines}, {"PoolSize", o.PoolSize}, {"MaxRead", o.MaxRead}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %d", n.name, n.v))
		}
	}
	if o.PoolSize >= 0 && o.DirectAppends > 0 && o.PoolSize <= o.DirectAppends {
		errs = append(errs, fmt.Errorf("PoolSize: %d leaves no connection beside DirectAppends %d", o.PoolSize, o.DirectAppends))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", o.DialTimeout},
		{"OpTimeout", o.OpTimeout},
		{"RetryDeadline", o.RetryDeadline},
		{"MinBackoff", o.MinBackoff},
		{"MaxBackoff", o.MaxBackoff},
		{"IndexInterval", o.IndexInterval},
		{"StatsWindow", o.StatsWindow},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %v", d.name, d.v))
		}
	}
	if o.MinBackoff > o.MaxBackoff {
		errs = append(errs, fmt.Errorf("MinBackoff: %v is above MaxBackoff %v", o.MinBackoff, o.MaxBackoff))
	}
	if o.OpTimeout > o.RetryDeadline {
		errs = append(errs, fmt.Errorf("OpTimeout: %v is above RetryDeadline %v, so a call could never retry", o.OpTimeout, o.RetryDeadline))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("queue: invalid Redis options: %w", err)
	}
	return nil
}

// redisClientOptions builds the go-redis options the log runs with.
func (o *RedisOptions) redisClientOptions() (*redis.Options, error) {
	var ro redis.Options
	if o.Redis != nil {
		ro = *o.Redis
	} else {
		parsed, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("queue: Redis URL: %w", err)
		}
		ro = *parsed
	}
	// go-redis would re-send a command whose reply was lost; the log
	// retries itself, with the same idempotent script and its own deadline.
	ro.MaxRetries = -1
	ro.PoolSize = o.PoolSize
	ro.DialTimeout = o.DialTimeout
	// One quick redial, then our backoff: go-redis's own dial retries would
	// spend half a second inside one attempt while Redis is down.
	ro.DialerRetries = 1
	ro.ReadTimeout = o.OpTimeout
	ro.WriteTimeout = o.OpTimeout
	ro.PoolTimeout = o.OpTimeout
	ro.ContextTimeoutEnabled = true
	// Redis before 7.2 answers CLIENT SETINFO with an error; the log has no
	// use for the library name on its connections.
	ro.DisableIdentity = true
	// The log never follows maintenance pushes; leaving them on only adds a
	// command to every new connection.
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// The autopipeliner's own connections: one per pipeline in flight,
	// and a spare for a batch that is being torn down.
	ro.PipelinePoolSize = o.AppendPipelines + 2
	return &ro, nil
}
