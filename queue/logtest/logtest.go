// Package logtest is the contract test suite of queue.Log. Every
// implementation runs it (queue.MemoryLog in memory_test.go, queue.RedisLog
// in redis_test.go), so the room loop can rely on the same behaviour from
// each: epochs and fencing, idempotent appends, conflicts, reads, retention
// and snapshots.
package logtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/queue"
)

// Retain is the retention window the logs under test must be made with
// (MemoryOptions.Retain, RedisOptions.Retain).
const Retain = 50

// NewLog returns an empty log with a retention window of Retain entries.
// It is called once per subtest; the log must not share rooms with another.
type NewLog func(t *testing.T) queue.Log

// Run runs the contract suite against logs made by newLog.
func Run(t *testing.T, newLog NewLog) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, l queue.Log)
	}{
		{"BadRoom", testBadRoom},
		{"FreshRoom", testFreshRoom},
		{"AcquireEpochs", testAcquireEpochs},
		{"AppendFollow", testAppendFollow},
		{"EmptyBatch", testEmptyBatch},
		{"Fenced", testFenced},
		{"NeverAcquiredIsFenced", testNeverAcquired},
		{"Conflict", testConflict},
		{"IdenticalRetry", testIdenticalRetry},
		{"RetryMustMatchEveryField", testRetryFields},
		{"ReadRanges", testReadRanges},
		{"BinaryEvents", testBinaryEvents},
		{"Snapshot", testSnapshot},
		{"Retention", testRetention},
		{"SnapshotPlusTail", testSnapshotPlusTail},
		{"TakeoverContinues", testTakeover},
		{"ConcurrentRooms", testConcurrentRooms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newLog(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// Rec is the record the suite writes at seq in generation gen: every field
// depends on both, and At and the hash below are beyond 2^53, so a store
// that passes numbers through doubles is caught.
func Rec(seq, gen uint64) queue.Record {
	return queue.Record{
		Seq:   seq,
		Stamp: seq*1000 + gen,
		At:    1_718_000_000_000_000_000 + int64(seq)*1_000_003 + int64(gen),
		Event: fmt.Appendf(nil, `{"type":"event","seq":%d,"gen":%d,"pad":"%s"}`, seq, gen, strings.Repeat("x", int(seq%7)*10)),
	}
}

// Recs returns Rec(first..last, gen).
func Recs(first, last, gen uint64) []queue.Record {
	var out []queue.Record
	for s := first; s <= last; s++ {
		out = append(out, Rec(s, gen))
	}
	return out
}

// Hash is the state hash the suite records after seq.
func Hash(seq uint64) uint64 { return 0xfedc_ba98_7654_3210 + seq }

func batch(epoch uint64, recs []queue.Record) queue.Batch {
	return queue.Batch{Epoch: epoch, Records: recs, Hash: Hash(recs[len(recs)-1].Seq)}
}

func acquire(t *testing.T, l queue.Log, room string) uint64 {
	t.Helper()
	e, err := l.Acquire(ctx(t), room, queue.Lease{})
	require.NoError(t, err)
	return e
}

func appendOK(t *testing.T, l queue.Log, room string, epoch uint64, recs []queue.Record) {
	t.Helper()
	require.NoError(t, l.Append(ctx(t), room, batch(epoch, recs)))
}

// readAll reads first..last in pages of 7, to exercise max.
func readAll(t *testing.T, l queue.Log, room string, from, to uint64) []queue.Record {
	t.Helper()
	var out []queue.Record
	for from <= to {
		recs, err := l.Read(ctx(t), room, from, to, 7)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Seq + 1
	}
	return out
}

func requireMeta(t *testing.T, l queue.Log, room string, want queue.Meta) {
	t.Helper()
	m, err := l.Meta(ctx(t), room)
	require.NoError(t, err)
	require.Equal(t, want, m)
}

func testBadRoom(t *testing.T, l queue.Log) {
	c := ctx(t)
	for _, room := range []string{"", "has space", "brace{x}", "colon:x", "slash/x", "é", strings.Repeat("r", 65)} {
		_, err := l.Acquire(c, room, queue.Lease{})
		require.ErrorIs(t, err, queue.ErrBadRoom, "Acquire %q", room)
		err = l.Append(c, room, batch(1, Recs(1, 1, 0)))
		require.ErrorIs(t, err, queue.ErrBadRoom, "Append %q", room)
		_, err = l.Read(c, room, 1, 10, 10)
		require.ErrorIs(t, err, queue.ErrBadRoom, "Read %q", room)
		_, err = l.Meta(c, room)
		require.ErrorIs(t, err, queue.ErrBadRoom, "Meta %q", room)
		err = l.SaveSnapshot(c, room, queue.Snapshot{Seq: 0, State: []byte("s")})
		require.ErrorIs(t, err, queue.ErrBadRoom, "SaveSnapshot %q", room)
		_, _, err = l.LoadSnapshot(c, room)
		require.ErrorIs(t, err, queue.ErrBadRoom, "LoadSnapshot %q", room)
	}
	// The longest valid name and every allowed character work.
	_, err := l.Acquire(c, strings.Repeat("r", 64), queue.Lease{})
	require.NoError(t, err)
	_, err = l.Acquire(c, "Az09_.-", queue.Lease{})
	require.NoError(t, err)
}

func testFreshRoom(t *testing.T, l queue.Log) {
	requireMeta(t, l, "fresh", queue.Meta{FirstSeq: 1})
	recs, err := l.Read(ctx(t), "fresh", 1, 100, 10)
	require.NoError(t, err)
	require.Empty(t, recs)
	_, ok, err := l.LoadSnapshot(ctx(t), "fresh")
	require.NoError(t, err)
	require.False(t, ok)
}

func testAcquireEpochs(t *testing.T, l queue.Log) {
	e1 := acquire(t, l, "a")
	require.Positive(t, e1)
	e2 := acquire(t, l, "a")
	require.Greater(t, e2, e1)
	requireMeta(t, l, "a", queue.Meta{FirstSeq: 1, Epoch: e2})
	// Rooms have their own epochs.
	b1 := acquire(t, l, "b")
	require.Positive(t, b1)
	requireMeta(t, l, "a", queue.Meta{FirstSeq: 1, Epoch: e2})
}

func testAppendFollow(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	appendOK(t, l, "r", e, Recs(1, 1, 0))
	appendOK(t, l, "r", e, Recs(2, 5, 0))
	appendOK(t, l, "r", e, Recs(6, 40, 0))
	last := Rec(40, 0)
	requireMeta(t, l, "r", queue.Meta{LastSeq: 40, LastHash: Hash(40), LastAt: last.At, FirstSeq: 1, Epoch: e})
	require.Equal(t, Recs(1, 40, 0), readAll(t, l, "r", 1, 40))
}

func testEmptyBatch(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	require.NoError(t, l.Append(ctx(t), "r", queue.Batch{Epoch: e}))
	requireMeta(t, l, "r", queue.Meta{FirstSeq: 1, Epoch: e})
}

func testFenced(t *testing.T, l queue.Log) {
	old := acquire(t, l, "r")
	appendOK(t, l, "r", old, Recs(1, 3, 0))
	cur := acquire(t, l, "r")
	// The old owner can neither append nor retry its last batch.
	require.ErrorIs(t, l.Append(ctx(t), "r", batch(old, Recs(4, 5, 0))), queue.ErrFenced)
	require.ErrorIs(t, l.Append(ctx(t), "r", batch(old, Recs(1, 3, 0))), queue.ErrFenced)
	// Neither can an epoch from the future.
	require.ErrorIs(t, l.Append(ctx(t), "r", batch(cur+1, Recs(4, 5, 0))), queue.ErrFenced)
	appendOK(t, l, "r", cur, Recs(4, 5, 1))
	requireMeta(t, l, "r", queue.Meta{LastSeq: 5, LastHash: Hash(5), LastAt: Rec(5, 1).At, FirstSeq: 1, Epoch: cur})
	require.Equal(t, append(Recs(1, 3, 0), Recs(4, 5, 1)...), readAll(t, l, "r", 1, 5))
}

// testNeverAcquired: epoch 0 is never handed out, so it is no key to a room
// nobody acquired.
func testNeverAcquired(t *testing.T, l queue.Log) {
	require.ErrorIs(t, l.Append(ctx(t), "r", batch(0, Recs(1, 1, 0))), queue.ErrFenced)
	requireMeta(t, l, "r", queue.Meta{FirstSeq: 1})
}

func testConflict(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	appendOK(t, l, "r", e, Recs(1, 10, 0))
	for name, recs := range map[string][]queue.Record{
		"gap":               Recs(12, 13, 0),
		"seq zero":          {Rec(0, 0)},
		"overlap differs":   Recs(9, 11, 1),
		"overlap past last": Recs(9, 11, 0),
		"old batch differs": Recs(3, 4, 1),
		"not consecutive":   {Rec(11, 0), Rec(13, 0)},
		"repeat in batch":   {Rec(11, 0), Rec(11, 0)},
	} {
		err := l.Append(ctx(t), "r", batch(e, recs))
		require.ErrorIs(t, err, queue.ErrConflict, name)
	}
	requireMeta(t, l, "r", queue.Meta{LastSeq: 10, LastHash: Hash(10), LastAt: Rec(10, 0).At, FirstSeq: 1, Epoch: e})
	require.Equal(t, Recs(1, 10, 0), readAll(t, l, "r", 1, 20))
}

func testIdenticalRetry(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	appendOK(t, l, "r", e, Recs(1, 4, 0))
	appendOK(t, l, "r", e, Recs(5, 9, 0))
	// The last batch again (its reply was lost), an older one, a part.
	appendOK(t, l, "r", e, Recs(5, 9, 0))
	appendOK(t, l, "r", e, Recs(1, 4, 0))
	appendOK(t, l, "r", e, Recs(6, 7, 0))
	requireMeta(t, l, "r", queue.Meta{LastSeq: 9, LastHash: Hash(9), LastAt: Rec(9, 0).At, FirstSeq: 1, Epoch: e})
	require.Equal(t, Recs(1, 9, 0), readAll(t, l, "r", 1, 100))
	appendOK(t, l, "r", e, Recs(10, 10, 0))
	require.Equal(t, Recs(1, 10, 0), readAll(t, l, "r", 1, 100))
}

// testRetryFields: a retry is identical only if stamp, time and event bytes
// all are; a record differing in any one is another action.
func testRetryFields(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	appendOK(t, l, "r", e, Recs(1, 3, 0))
	for name, mut := range map[string]func(*queue.Record){
		"stamp": func(r *queue.Record) { r.Stamp++ },
		"at":    func(r *queue.Record) { r.At++ },
		"event": func(r *queue.Record) { r.Event = append(append([]byte{}, r.Event...), ' ') },
	} {
		recs := Recs(2, 3, 0)
		mut(&recs[1])
		require.ErrorIs(t, l.Append(ctx(t), "r", batch(e, recs)), queue.ErrConflict, name)
	}
	require.Equal(t, Recs(1, 3, 0), readAll(t, l, "r", 1, 3))
}

func testReadRanges(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	appendOK(t, l, "r", e, Recs(1, 20, 0))
	c := ctx(t)
	for _, tc := range []struct {
		from, to uint64
		max      int
		want     []queue.Record
	}{
		{1, 20, 100, Recs(1, 20, 0)},
		{0, 3, 100, Recs(1, 3, 0)}, // from 0 reads from the start
		{5, 9, 100, Recs(5, 9, 0)},
		{5, 9, 2, Recs(5, 6, 0)},
		{18, 1 << 62, 100, Recs(18, 20, 0)},
		{20, 20, 1, Recs(20, 20, 0)},
		{21, 30, 100, nil},
		{9, 5, 100, nil},
		{1, 20, 0, nil},
	} {
		got, err := l.Read(c, "r", tc.from, tc.to, tc.max)
		require.NoError(t, err, "Read(%d, %d, %d)", tc.from, tc.to, tc.max)
		if len(tc.want) == 0 {
			require.Empty(t, got, "Read(%d, %d, %d)", tc.from, tc.to, tc.max)
			continue
		}
		require.Equal(t, tc.want, got, "Read(%d, %d, %d)", tc.from, tc.to, tc.max)
	}
}

func testBinaryEvents(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	recs := Recs(1, 3, 0)
	recs[0].Event = []byte{0, 1, 2, 0xff, 0xfe, '\r', '\n', 0}
	recs[1].Event = []byte(`{"s":"ünïcödé \u0000 ok"}`)
	recs[2].Event = []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB
	appendOK(t, l, "r", e, recs)
	appendOK(t, l, "r", e, recs) // and the retry compares them byte for byte
	require.Equal(t, recs, readAll(t, l, "r", 1, 3))
}

func testSnapshot(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	c := ctx(t)
	require.ErrorIs(t, l.SaveSnapshot(c, "r", queue.Snapshot{Seq: 1, State: []byte("s1")}), queue.ErrConflict)
	appendOK(t, l, "r", e, Recs(1, 10, 0))
	state := []byte("state at 5 \x00\xff")
	s5 := queue.Snapshot{Seq: 5, Hash: Hash(5), At: Rec(5, 0).At, State: state}
	require.NoError(t, l.SaveSnapshot(c, "r", s5))
	state[0] = 'X' // the log keeps its own copy
	got, ok, err := l.LoadSnapshot(c, "r")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, queue.Snapshot{Seq: 5, Hash: Hash(5), At: Rec(5, 0).At, State: []byte("state at 5 \x00\xff")}, got)
	// An older or equal snapshot changes nothing; a newer one replaces it.
	require.NoError(t, l.SaveSnapshot(c, "r", queue.Snapshot{Seq: 3, Hash: 1, State: []byte("old")}))
	require.NoError(t, l.SaveSnapshot(c, "r", queue.Snapshot{Seq: 5, Hash: 1, State: []byte("same seq")}))
	got, _, err = l.LoadSnapshot(c, "r")
	require.NoError(t, err)
	require.Equal(t, uint64(5), got.Seq)
	require.Equal(t, Hash(5), got.Hash)
	s10 := queue.Snapshot{Seq: 10, Hash: Hash(10), At: Rec(10, 0).At, State: []byte("state at 10")}
	require.NoError(t, l.SaveSnapshot(c, "r", s10))
	got, _, err = l.LoadSnapshot(c, "r")
	require.NoError(t, err)
	require.Equal(t, s10, got)
	// Below the retention window nothing is trimmed.
	requireMeta(t, l, "r", queue.Meta{LastSeq: 10, LastHash: Hash(10), LastAt: Rec(10, 0).At, FirstSeq: 1, Epoch: e})
}

func testRetention(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	c := ctx(t)
	appendOK(t, l, "r", e, Recs(1, 200, 0))
	require.NoError(t, l.SaveSnapshot(c, "r", queue.Snapshot{Seq: 120, Hash: Hash(120), At: Rec(120, 0).At, State: []byte("s120")}))
	// Retain entries up to and including the snapshot stay.
	first := uint64(120 - Retain + 1)
	requireMeta(t, l, "r", queue.Meta{LastSeq: 200, LastHash: Hash(200), LastAt: Rec(200, 0).At, FirstSeq: first, Epoch: e})
	_, err := l.Read(c, "r", first-1, 200, 10)
	require.ErrorIs(t, err, queue.ErrTrimmed)
	_, err = l.Read(c, "r", 1, 200, 10)
	require.ErrorIs(t, err, queue.ErrTrimmed)
	_, err = l.Read(c, "r", 0, 200, 10)
	require.ErrorIs(t, err, queue.ErrTrimmed)
	require.Equal(t, Recs(first, 200, 0), readAll(t, l, "r", first, 200))

	// A retry of a trimmed batch cannot be verified: it is a conflict.
	require.ErrorIs(t, l.Append(c, "r", batch(e, Recs(1, 2, 0))), queue.ErrConflict)
	// A retry of a kept one still succeeds.
	appendOK(t, l, "r", e, Recs(first, first+1, 0))

	// An older snapshot trims nothing more; appends go on.
	require.NoError(t, l.SaveSnapshot(c, "r", queue.Snapshot{Seq: 100, State: []byte("s100")}))
	appendOK(t, l, "r", e, Recs(201, 260, 0))
	require.NoError(t, l.SaveSnapshot(c, "r", queue.Snapshot{Seq: 250, Hash: Hash(250), At: Rec(250, 0).At, State: []byte("s250")}))
	first = 250 - Retain + 1
	requireMeta(t, l, "r", queue.Meta{LastSeq: 260, LastHash: Hash(260), LastAt: Rec(260, 0).At, FirstSeq: first, Epoch: e})
	require.Equal(t, Recs(first, 260, 0), readAll(t, l, "r", first, 300))
}

// testSnapshotPlusTail: what a rebuilding room reads (the snapshot, then
// the log after it) covers exactly the entries a full read returns.
func testSnapshotPlusTail(t *testing.T, l queue.Log) {
	e := acquire(t, l, "r")
	c := ctx(t)
	appendOK(t, l, "r", e, Recs(1, 30, 0))
	full := readAll(t, l, "r", 1, 30)
	require.NoError(t, l.SaveSnapshot(c, "r", queue.Snapshot{Seq: 30, Hash: Hash(30), At: Rec(30, 0).At, State: []byte("s30")}))
	appendOK(t, l, "r", e, Recs(31, 45, 0))
	full = append(full, readAll(t, l, "r", 31, 45)...)

	s, ok, err := l.LoadSnapshot(c, "r")
	require.NoError(t, err)
	require.True(t, ok)
	m, err := l.Meta(c, "r")
	require.NoError(t, err)
	tail := readAll(t, l, "r", s.Seq+1, m.LastSeq)
	require.Equal(t, full[s.Seq:], tail)
	require.Equal(t, Recs(1, 45, 0), full)
}

// testTakeover: a new owner continues the sequence where the log ends,
// whatever the old one had in flight.
func testTakeover(t *testing.T, l queue.Log) {
	old := acquire(t, l, "r")
	appendOK(t, l, "r", old, Recs(1, 5, 0))
	cur := acquire(t, l, "r")
	m, err := l.Meta(ctx(t), "r")
	require.NoError(t, err)
	require.Equal(t, uint64(5), m.LastSeq)
	require.Equal(t, Hash(5), m.LastHash)
	require.ErrorIs(t, l.Append(ctx(t), "r", batch(old, Recs(6, 6, 0))), queue.ErrFenced)
	appendOK(t, l, "r", cur, Recs(m.LastSeq+1, 8, 1))
	require.Equal(t, append(Recs(1, 5, 0), Recs(6, 8, 1)...), readAll(t, l, "r", 1, 8))
}

func testConcurrentRooms(t *testing.T, l queue.Log) {
	const rooms, batches, per = 8, 25, 4
	var wg sync.WaitGroup
	errs := make(chan error, rooms)
	for i := range rooms {
		room := fmt.Sprintf("c%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			e, err := l.Acquire(context.Background(), room, queue.Lease{})
			if err != nil {
				errs <- err
				return
			}
			for b := range uint64(batches) {
				if err := l.Append(context.Background(), room, batch(e, Recs(b*per+1, b*per+per, 0))); err != nil {
					errs <- fmt.Errorf("room %s batch %d: %w", room, b, err)
					return
				}
			}
		}()
		go func() { // a reader following the writer
			defer wg.Done()
			for range batches {
				recs, err := l.Read(context.Background(), room, 1, batches*per, batches*per)
				if err != nil {
					errs <- err
					return
				}
				for j := range recs {
					if recs[j].Seq != uint64(j+1) {
						errs <- fmt.Errorf("room %s: read seq %d at %d", room, recs[j].Seq, j)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := range rooms {
		room := fmt.Sprintf("c%d", i)
		require.Equal(t, Recs(1, batches*per, 0), readAll(t, l, room, 1, batches*per))
	}
}
