package queue_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/internal/redistest"
	"github.com/lasthit/lasthit/internal/testutil"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/queue/logtest"
)

func newRedisLog(t testing.TB, url string, opts queue.RedisOptions) *queue.RedisLog {
	t.Helper()
	opts.URL = url
	if opts.Prefix == "" {
		// Keys of their own per test, so subtests can share a server.
		opts.Prefix = strings.ReplaceAll(t.Name(), " ", "_")
	}
	l, err := queue.NewRedisLog(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func rawClient(t testing.TB, srv *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRedisLogContract(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	logtest.Run(t, func(t *testing.T) queue.Log {
		return newRedisLog(t, srv.URL(), queue.RedisOptions{Retain: logtest.Retain})
	})
}

func TestRedisOptionsValidate(t *testing.T) {
	_, err := queue.NewRedisLog(queue.RedisOptions{})
	require.ErrorContains(t, err, "URL or Redis: one is required")

	_, err = queue.NewRedisLog(queue.RedisOptions{
		URL:           "redis://127.0.0.1:1/0",
		Redis:         &redis.Options{},
		Prefix:        "a{b}",
		PoolSize:      -1,
		MaxRead:       -2,
		OpTimeout:     5 * time.Second,
		RetryDeadline: time.Second,
		MinBackoff:    time.Second,
		MaxBackoff:    time.Millisecond,
		StatsWindow:   -time.Second,
	})
	require.Error(t, err)
	for _, want := range []string{"URL and Redis: set only one", "Prefix", "PoolSize", "MaxRead", "OpTimeout", "MinBackoff", "StatsWindow"} {
		require.ErrorContains(t, err, want)
	}

	_, err = queue.NewRedisLog(queue.RedisOptions{URL: "http://nope"})
	require.ErrorContains(t, err, "Redis URL")
}

// TestRedisKeyLayout pins what anyone with redis-cli sees (README).
func TestRedisKeyLayout(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	raw := rawClient(t, srv)
	ctx := testCtx(t, 20*time.Second)
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{Prefix: "lh", Game: "baron"})

	e, err := l.Acquire(ctx, "r1", queue.Lease{})
	require.NoError(t, err)
	recs := logtest.Recs(1, 3, 0)
	require.NoError(t, l.Append(ctx, "r1", queue.Batch{Epoch: e, Records: recs, Hash: logtest.Hash(3)}))
	require.NoError(t, l.SaveSnapshot(ctx, "r1", queue.Snapshot{Seq: 2, Hash: 77, At: recs[1].At, State: []byte("st")}))

	keys, err := raw.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"lh:{r1}:log", "lh:{r1}:meta", "lh:{r1}:epoch", "lh:{r1}:snap", "lh:rooms"}, keys)

	msgs, err := raw.XRange(ctx, "lh:{r1}:log", "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	for i, m := range msgs {
		require.Equal(t, fmt.Sprintf("%d-0", i+1), m.ID)
		require.Equal(t, map[string]any{
			"ev": string(recs[i].Event),
			"st": fmt.Sprintf("%d:%d", recs[i].Stamp, recs[i].At),
		}, m.Values)
	}

	meta, err := raw.HGetAll(ctx, "lh:{r1}:meta").Result()
	require.NoError(t, err)
	require.Equal(t, "3", meta["seq"])
	require.Equal(t, fmt.Sprint(logtest.Hash(3)), meta["hash"])
	require.Equal(t, fmt.Sprint(recs[2].At), meta["at"])
	require.Equal(t, "1", meta["epoch"])
	require.Equal(t, "baron", meta["game"])
	require.NotEmpty(t, meta["created"])
	require.NotEmpty(t, meta["active"])

	require.Equal(t, "1", raw.Get(ctx, "lh:{r1}:epoch").Val())
	require.Equal(t, map[string]string{"seq": "2", "hash": "77", "at": fmt.Sprint(recs[1].At), "state": "st"},
		raw.HGetAll(ctx, "lh:{r1}:snap").Val())
	_, err = raw.ZScore(ctx, "lh:rooms", "r1").Result()
	require.NoError(t, err)

	// Another log on the same Redis (a new server process) continues.
	l2 := newRedisLog(t, srv.URL(), queue.RedisOptions{Prefix: "lh"})
	e2, err := l2.Acquire(ctx, "r1", queue.Lease{})
	require.NoError(t, err)
	require.Equal(t, uint64(2), e2)
	m, err := l2.Meta(ctx, "r1")
	require.NoError(t, err)
	require.Equal(t, queue.Meta{LastSeq: 3, LastHash: logtest.Hash(3), LastAt: recs[2].At, FirstSeq: 1, Epoch: 2}, m)
	require.ErrorIs(t, l.Append(ctx, "r1", queue.Batch{Epoch: e, Records: logtest.Recs(4, 4, 0), Hash: 1}), queue.ErrFenced)
	require.NoError(t, l2.Append(ctx, "r1", queue.Batch{Epoch: e2, Records: logtest.Recs(4, 4, 0), Hash: 1}))

	// The default prefix is lh; a custom one is used for every key.
	l3 := newRedisLog(t, srv.URL(), queue.RedisOptions{Prefix: "other"})
	_, err = l3.Acquire(ctx, "r1", queue.Lease{})
	require.NoError(t, err)
	require.Equal(t, "1", raw.Get(ctx, "other:{r1}:epoch").Val())
}

// nextMilli waits for the wall clock to enter a new millisecond, so rooms
// touched one after the other get distinct index scores.
func nextMilli() {
	now := time.Now().UnixMilli()
	for time.Now().UnixMilli() == now {
		runtime.Gosched()
	}
}

func TestRedisGetters(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true, AppendFsync: "always"})
	raw := rawClient(t, srv)
	ctx := testCtx(t, 20*time.Second)
	// IndexInterval below a millisecond: every append refreshes the index.
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{Game: "baron", Retain: 10, IndexInterval: time.Microsecond})

	epochs := map[string]uint64{}
	for _, room := range []string{"a", "b", "c"} {
		e, err := l.Acquire(ctx, room, queue.Lease{})
		require.NoError(t, err)
		epochs[room] = e
	}
	for _, room := range []string{"c", "b", "a"} {
		nextMilli()
		require.NoError(t, l.Append(ctx, room, queue.Batch{Epoch: epochs[room], Records: logtest.Recs(1, 30, 0), Hash: logtest.Hash(30)}))
	}
	rooms, err := l.Rooms(ctx, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, roomNames(rooms))
	require.False(t, rooms[0].LastActive.Before(rooms[1].LastActive))
	rooms, err = l.Rooms(ctx, 1, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, roomNames(rooms))
	rooms, err = l.Rooms(ctx, 5, 10)
	require.NoError(t, err)
	require.Empty(t, rooms)

	require.NoError(t, l.SaveSnapshot(ctx, "a", queue.Snapshot{Seq: 25, Hash: logtest.Hash(25), State: []byte("s")}))
	e2, err := l.Acquire(ctx, "a", queue.Lease{})
	require.NoError(t, err)
	info, err := l.RoomInfo(ctx, "a")
	require.NoError(t, err)
	require.True(t, info.Exists)
	require.Equal(t, "a", info.Room)
	require.Equal(t, uint64(30), info.LastSeq)
	require.Equal(t, uint64(25-10+1), info.FirstSeq)
	require.Equal(t, int64(30-16+1), info.StreamLen)
	require.Equal(t, logtest.Hash(30), info.LastHash)
	require.Equal(t, e2, info.Epoch)
	require.Equal(t, epochs["a"], info.WriteEpoch)
	require.Equal(t, "", info.Owner)
	require.True(t, info.HasSnapshot)
	require.Equal(t, uint64(25), info.SnapshotSeq)
	require.Equal(t, "baron", info.Game)
	require.False(t, info.Created.IsZero())
	require.False(t, info.LastActive.Before(info.Created))

	info, err = l.RoomInfo(ctx, "nobody")
	require.NoError(t, err)
	require.Equal(t, queue.RoomInfo{Room: "nobody", FirstSeq: 1}, info)
	_, err = l.RoomInfo(ctx, "bad room")
	require.ErrorIs(t, err, queue.ErrBadRoom)

	p, err := l.Persistence(ctx)
	require.NoError(t, err)
	require.Equal(t, queue.Persistence{AppendOnly: true, AppendFsync: "always", CrashSafe: true, Summary: p.Summary}, p)
	require.Contains(t, p.Summary, "survives a Redis crash")
	require.NoError(t, raw.ConfigSet(ctx, "appendfsync", "everysec").Err())
	p, err = l.Persistence(ctx)
	require.NoError(t, err)
	require.False(t, p.CrashSafe)
	require.Contains(t, p.Summary, "1 s")
	require.NoError(t, raw.ConfigSet(ctx, "appendonly", "no").Err())
	p, err = l.Persistence(ctx)
	require.NoError(t, err)
	require.False(t, p.AppendOnly)
	require.Contains(t, p.Summary, "not crash-safe")
}

func roomNames(rs []queue.RoomActivity) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Room)
	}
	return out
}

func TestRedisStats(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := testCtx(t, 20*time.Second)
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{})
	e, err := l.Acquire(ctx, "r", queue.Lease{})
	require.NoError(t, err)
	for i := uint64(0); i < 20; i++ {
		require.NoError(t, l.Append(ctx, "r", queue.Batch{Epoch: e, Records: logtest.Recs(i*5+1, i*5+5, 0), Hash: 1}))
	}
	require.ErrorIs(t, l.Append(ctx, "r", queue.Batch{Epoch: e + 1, Records: logtest.Recs(101, 101, 0)}), queue.ErrFenced)
	require.ErrorIs(t, l.Append(ctx, "r", queue.Batch{Epoch: e, Records: logtest.Recs(200, 200, 0)}), queue.ErrConflict)

	st := l.Stats()
	require.Equal(t, uint64(20), st.TotalAppends)
	require.Equal(t, uint64(100), st.TotalEntries)
	require.Equal(t, uint64(1), st.TotalFenced)
	require.Equal(t, uint64(1), st.TotalConflicts)
	require.Zero(t, st.TotalFailed)
	require.Equal(t, uint64(20), st.Appends)
	require.Equal(t, uint64(100), st.Entries)
	require.InDelta(t, 5.0, st.MeanBatch, 1e-9)
	require.Positive(t, st.P50)
	require.LessOrEqual(t, st.P50, st.P99)
	require.LessOrEqual(t, st.P99, st.Max)
	require.Positive(t, st.AppendsPerSec)
	require.Positive(t, st.Window)
}

// LoadScripts fills the script cache, so a starting server's first
// appends and lease calls meet no NOSCRIPT.
func TestRedisLoadScripts(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	raw := rawClient(t, srv)
	ctx := testCtx(t, 20*time.Second)
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{})
	require.NoError(t, l.LoadScripts(ctx))
	lease := queue.Lease{Node: queue.Node{ID: "n", URL: "ws://n/ws"}, TTL: time.Minute}
	e, err := l.Acquire(ctx, "r", lease)
	require.NoError(t, err)
	require.NoError(t, l.Append(ctx, "r", queue.Batch{Epoch: e, Records: logtest.Recs(1, 2, 0), Hash: 2}))
	require.NoError(t, l.SaveSnapshot(ctx, "r", queue.Snapshot{Seq: 2, Hash: 2, State: []byte("s")}))
	require.NoError(t, l.Renew(ctx, "r", lease, e))
	require.NoError(t, l.Release(ctx, "r", lease, e))
	info, err := raw.Info(ctx, "commandstats").Result()
	require.NoError(t, err)
	assert.Contains(t, info, "cmdstat_evalsha:calls=5,")
	assert.Contains(t, info, "cmdstat_script|load:calls=5,", "loaded once each, none again on NOSCRIPT")
}

// TestRedisScriptReload: a Redis that lost its script cache (restart,
// SCRIPT FLUSH) gets the scripts loaded again on NOSCRIPT.
func TestRedisScriptReload(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	raw := rawClient(t, srv)
	ctx := testCtx(t, 20*time.Second)
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{Retain: 2})
	e, err := l.Acquire(ctx, "r", queue.Lease{})
	require.NoError(t, err)
	for i := uint64(1); i <= 3; i++ {
		require.NoError(t, raw.ScriptFlush(ctx).Err())
		require.NoError(t, l.Append(ctx, "r", queue.Batch{Epoch: e, Records: logtest.Recs(i, i, 0), Hash: i}))
		require.NoError(t, raw.ScriptFlush(ctx).Err())
		require.NoError(t, l.SaveSnapshot(ctx, "r", queue.Snapshot{Seq: i, Hash: i, State: []byte("s")}))
	}
	m, err := l.Meta(ctx, "r")
	require.NoError(t, err)
	require.Equal(t, uint64(3), m.LastSeq)
	require.Equal(t, uint64(2), m.FirstSeq)
	require.Zero(t, l.Stats().TotalRetries, "NOSCRIPT is not a failed attempt")
}

// A new connection refused at Redis's maxclients is "not now": the append
// retries and goes through once a connection frees up.
func TestRedisRetriesAtMaxClients(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxclients 2"}})
	ctx := testCtx(t, 20*time.Second)
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{})
	e, err := l.Acquire(ctx, "r", queue.Lease{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	l = newRedisLog(t, srv.URL(), queue.RedisOptions{})
	// Two other clients take both connections.
	hogs := []*redis.Client{rawClient(t, srv), rawClient(t, srv)}
	for _, h := range hogs {
		require.NoError(t, h.Ping(ctx).Err())
	}
	appended := make(chan error, 1)
	go func() { appended <- l.Append(ctx, "r", queue.Batch{Epoch: e, Records: logtest.Recs(1, 1, 0), Hash: 1}) }()
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if l.Stats().TotalRetries == 0 {
			return errors.New("the append has not been refused yet")
		}
		return nil
	})
	require.NoError(t, hogs[0].Close())
	require.NoError(t, <-appended)
}
