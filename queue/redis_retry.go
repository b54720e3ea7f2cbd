package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Retry policy. Every call the log makes to Redis is safe to repeat: reads
// read, the append and snapshot scripts are idempotent (a batch already in
// the log is a successful retry), and a repeated Acquire only skips an epoch
// nobody was handed, which fences more, never less. So the log retries any
// error after which the command may or may not have run (a lost reply, a
// reset or refused connection, a timeout) and any error Redis gives while it
// cannot serve yet (LOADING after a restart, BUSY, TRYAGAIN, CLUSTERDOWN,
// MASTERDOWN, READONLY during a failover), with jittered exponential backoff,
// until the call's deadline. An answer (fenced, conflict, a script or type
// error) is never retried, and neither is a canceled context or a closed
// client.

func retriable(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, context.Canceled),
		errors.Is(err, redis.ErrClosed),
		errors.Is(err, ErrFenced),
		errors.Is(err, ErrConflict),
		errors.Is(err, ErrBadRoom),
		errors.Is(err, ErrTrimmed):
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !errors.Is(err, redis.ErrPoolTimeout) {
		// The error replies that mean "not now" rather than "no".
		for _, p := range [...]string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"} {
			if redis.HasErrorPrefix(err, p) {
				return true
			}
		}
		return false
	}
	// Not an answer from Redis: the connection failed, timed out, or the
	// pool had no connection in time. The command may have run.
	return true
}

// retry runs op until it succeeds, fails for good, or the deadline (the
// sooner of the context's and RetryDeadline from now) passes. It returns
// how many attempts it made.
func (l *RedisLog) retry(ctx context.Context, what, room string, op func(context.Context) error) (int, error) {
	deadline := time.Now().Add(l.opts.RetryDeadline)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	backoff := l.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if !retriable(err) {
			return attempt, err
		}
		if ctx.Err() == nil {
			l.stats.retried()
			wait := rand.N(backoff + 1) // full jitter: uniform in [0, backoff]
			l.logger.Debug().Err(err).Str("op", what).Str("room", room).Int("attempt", attempt).Dur("wait", wait).Msg("redis call failed; retrying")
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				backoff = min(2*backoff, l.opts.MaxBackoff)
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		l.logger.Warn().Err(err).Str("op", what).Str("room", room).Int("attempts", attempt).Msg("redis call given up")
		return attempt, fmt.Errorf("queue: %s: gave up after %d attempts (%w): %w", strings.TrimSpace(what+" "+room), attempt, ctx.Err(), err)
	}
}
