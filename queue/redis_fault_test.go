package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/internal/redistest"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/queue/logtest"
)

// appendOKs counts the append script's "ok" replies in a chunk (an array
// whose first element is the bulk string "ok"). A chunk can hold several:
// appends of different rooms share pipelines.
func appendOKs(reply []byte) int { return bytes.Count(reply, []byte("\r\n$2\r\nok\r\n")) }

// TestRedisLostReplies: a proxy swallows about every 10th reply chunk
// that answers a successful append, with every reply in it, and drops the
// connection: Redis ran those appends, their callers cannot know. 10,000 appends
// through it, with the log's own retries, leave every room gapless with
// no entry missing and none twice.
func TestRedisLostReplies(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	// 128 (the default): every room appends on a connection of its own;
	// 1: all but one go through the autopipeliner.
	for _, direct := range []int{128, 1} {
		t.Run(fmt.Sprintf("DirectAppends=%d", direct), func(t *testing.T) {
			testLostReplies(t, srv, direct)
		})
	}
}

func testLostReplies(t *testing.T, srv *redistest.Server, directAppends int) {
	var chunks, lost atomic.Int64
	proxy := redistest.StartProxy(t, srv.Addr(), func(reply []byte) bool {
		n := appendOKs(reply)
		if n == 0 || chunks.Add(1)%10 != 0 {
			return false
		}
		lost.Add(int64(n))
		return true
	})
	opts := queue.RedisOptions{Prefix: fmt.Sprintf("lost%d", directAppends), DirectAppends: directAppends, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, RetryDeadline: 10 * time.Second}
	l := newRedisLog(t, "redis://"+proxy.Addr()+"/0", opts)
	direct := newRedisLog(t, srv.URL(), queue.RedisOptions{Prefix: opts.Prefix})
	ctx := testCtx(t, 60*time.Second)

	const rooms, appends = 4, 10_000
	var wg sync.WaitGroup
	errs := make(chan error, rooms)
	last := make([]uint64, rooms)
	for i := range rooms {
		room := fmt.Sprintf("lost%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := l.Acquire(ctx, room, queue.Lease{})
			if err != nil {
				errs <- err
				return
			}
			seq := uint64(0)
			for n := range appends / rooms {
				size := uint64(n%3 + 1)
				b := queue.Batch{Epoch: e, Records: logtest.Recs(seq+1, seq+size, 0), Hash: logtest.Hash(seq + size)}
				if err := l.Append(ctx, room, b); err != nil {
					errs <- fmt.Errorf("room %s append %d: %w", room, n, err)
					return
				}
				seq += size
			}
			last[i] = seq
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	st := l.Stats()
	t.Logf("chunks dropped: %d, append replies lost: %d, retries: %d, appends: %d", proxy.Dropped(), lost.Load(), st.TotalRetries, st.TotalAppends)
	require.GreaterOrEqual(t, lost.Load(), int64(appends/20), "the proxy lost too few replies to mean anything")
	require.GreaterOrEqual(t, st.TotalRetries, uint64(lost.Load()))
	require.Equal(t, uint64(appends), st.TotalAppends)
	for i := range rooms {
		room := fmt.Sprintf("lost%d", i)
		m, err := direct.Meta(ctx, room)
		require.NoError(t, err)
		require.Equal(t, last[i], m.LastSeq)
		info, err := direct.RoomInfo(ctx, room)
		require.NoError(t, err)
		require.Equal(t, int64(last[i]), info.StreamLen, "room %s: duplicate or missing entries", room)
		got, err := direct.Read(ctx, room, 1, last[i], int(last[i]))
		require.NoError(t, err)
		require.Equal(t, logtest.Recs(1, last[i], 0), got, "room %s", room)
	}
}

// TestRedisKillAppendfsyncAlways: with appendfsync always, kill -9
// redis-server in the middle of a load of appends and restart it: every
// append that returned nil is there, and every log is gapless.
func TestRedisKillAppendfsyncAlways(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true, AppendFsync: "always"})
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{
		RetryDeadline: 500 * time.Millisecond,
		OpTimeout:     250 * time.Millisecond,
		DialTimeout:   100 * time.Millisecond,
		MaxBackoff:    50 * time.Millisecond,
	})

	const rooms = 4
	type writer struct {
		room  string
		acked map[uint64]queue.Record // owned by the writer until wg.Wait
		fails int
	}
	var (
		acks    atomic.Int64
		fails   atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		writers = make([]*writer, rooms)
		errs    = make(chan error, rooms)
	)
	for i := range writers {
		w := &writer{room: fmt.Sprintf("k%d", i), acked: map[uint64]queue.Record{}}
		writers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			gen, epoch, next := uint64(0), uint64(0), uint64(0)
			// reopen is what the room loop does after a failed append:
			// take a new epoch and continue after the last durable seq.
			reopen := func() bool {
				for {
					select {
					case <-stop:
						return false
					default:
					}
					e, err := l.Acquire(ctx, w.room, queue.Lease{})
					if err != nil {
						continue
					}
					m, err := l.Meta(ctx, w.room)
					if err != nil {
						continue
					}
					gen++
					epoch, next = e, m.LastSeq+1
					return true
				}
			}
			if !reopen() {
				return
			}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				size := uint64(n%4 + 1)
				recs := logtest.Recs(next, next+size-1, gen)
				err := l.Append(ctx, w.room, queue.Batch{Epoch: epoch, Records: recs, Hash: logtest.Hash(next + size - 1)})
				switch {
				case err == nil:
					for _, r := range recs {
						w.acked[r.Seq] = r
					}
					next += size
					acks.Add(1)
				case errors.Is(err, queue.ErrFenced), errors.Is(err, queue.ErrConflict):
					errs <- fmt.Errorf("room %s: %w", w.room, err)
					return
				default:
					w.fails++
					fails.Add(1)
					if !reopen() {
						return
					}
				}
			}
		}()
	}

	redistest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if n := acks.Load(); n < 300 {
			return fmt.Errorf("%d appends acked before the crash, want 300", n)
		}
		return nil
	})
	srv.Kill()
	redistest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if fails.Load() == 0 {
			return errors.New("no append has failed yet")
		}
		return nil
	})
	srv.Restart()
	after := acks.Load()
	redistest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if n := acks.Load() - after; n < 300 {
			return fmt.Errorf("%d appends acked after the restart, want 300", n)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	ctx := testCtx(t, 20*time.Second)
	for _, w := range writers {
		m, err := l.Meta(ctx, w.room)
		require.NoError(t, err)
		var got []queue.Record
		for from := uint64(1); from <= m.LastSeq; {
			recs, err := l.Read(ctx, w.room, from, m.LastSeq, 1000)
			require.NoError(t, err)
			require.NotEmpty(t, recs)
			got = append(got, recs...)
			from = recs[len(recs)-1].Seq + 1
		}
		require.Len(t, got, int(m.LastSeq), "room %s", w.room)
		for i, r := range got {
			require.Equal(t, uint64(i+1), r.Seq, "room %s: gap", w.room)
		}
		for seq, r := range w.acked {
			require.LessOrEqual(t, seq, m.LastSeq, "room %s: acked seq %d lost", w.room, seq)
			require.Equal(t, r, got[seq-1], "room %s: acked seq %d changed", w.room, seq)
		}
		t.Logf("room %s: %d entries, %d acked, %d failed appends", w.room, m.LastSeq, len(w.acked), w.fails)
	}
}

// TestRedisUnavailable: with Redis gone an append fails within the retry
// deadline with an error that is neither fenced nor a conflict (the room
// loop's cue to rebuild), and works again once Redis is back.
func TestRedisUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true, AppendFsync: "always"})
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{RetryDeadline: 300 * time.Millisecond, OpTimeout: 100 * time.Millisecond, DialTimeout: 100 * time.Millisecond})
	ctx := testCtx(t, 20*time.Second)
	e, err := l.Acquire(ctx, "r", queue.Lease{})
	require.NoError(t, err)
	require.NoError(t, l.Append(ctx, "r", queue.Batch{Epoch: e, Records: logtest.Recs(1, 2, 0), Hash: 2}))

	srv.Kill()
	start := time.Now()
	b := queue.Batch{Epoch: e, Records: logtest.Recs(3, 4, 0), Hash: 4}
	err = l.Append(ctx, "r", b)
	took := time.Since(start)
	require.Error(t, err)
	require.NotErrorIs(t, err, queue.ErrFenced)
	require.NotErrorIs(t, err, queue.ErrConflict)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, took, 3*time.Second)
	require.Equal(t, uint64(1), l.Stats().TotalFailed)
	require.Positive(t, l.Stats().TotalRetries)

	srv.Restart()
	require.NoError(t, l.Append(ctx, "r", b))
	m, err := l.Meta(ctx, "r")
	require.NoError(t, err)
	require.Equal(t, uint64(4), m.LastSeq)
}
