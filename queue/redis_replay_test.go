package queue_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/internal/redistest"
	"github.com/lasthit/lasthit/queue"
)

// replayEvent is this test's event frame: the entry and its result. (The
// sequencer has its own; the log only keeps bytes.)
type replayEvent struct {
	gamestate.Entry
	Result json.RawMessage
}

// TestRedisSnapshotPlusTailReplay plays a Baron room into the Redis log,
// snapshotting on the way, then rebuilds it twice: from seq 1, and from the
// snapshot plus the tail after it. Both give the same state, byte for byte,
// and every recorded result equals the recomputed one.
func TestRedisSnapshotPlusTailReplay(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := testCtx(t, 30*time.Second)
	l := newRedisLog(t, srv.URL(), queue.RedisOptions{Game: gamestate.BaronName})
	spec := gamestate.Baron()
	game := spec.New()
	epoch, err := l.Acquire(ctx, "baron1", queue.Lease{})
	require.NoError(t, err)

	players := []string{"ana", "bo", "cy", "dee"}
	kinds := []string{gamestate.KindAttack, gamestate.KindAttack, gamestate.KindAttack, gamestate.KindSmite}
	const total, snapAt = 600, 420
	at := int64(1_718_000_000_000_000_000)
	var (
		seq   uint64
		cseq  = map[string]uint64{}
		batch []queue.Record
		snap  queue.Snapshot
	)
	next := func(player, kind, target string) {
		seq++
		at += 7_000_003 // 7 ms
		e := gamestate.Entry{Seq: seq, At: at, Player: player, Kind: kind, Target: target}
		if player != "" {
			cseq[player]++
			e.CSeq = cseq[player]
		}
		ev, err := json.Marshal(replayEvent{Entry: e, Result: game.Apply(&e, nil)})
		require.NoError(t, err)
		batch = append(batch, queue.Record{Seq: seq, Stamp: seq, At: at, Event: ev})
		if len(batch) == 13 || seq == total || seq == snapAt {
			require.NoError(t, l.Append(ctx, "baron1", queue.Batch{Epoch: epoch, Records: batch, Hash: game.Hash()}))
			batch = nil
		}
		if seq == snapAt {
			snap = queue.Snapshot{Seq: seq, Hash: game.Hash(), At: at, State: game.Snapshot()}
			require.NoError(t, l.SaveSnapshot(ctx, "baron1", snap))
		}
	}
	for _, p := range players {
		next("", gamestate.KindJoin, p)
	}
	for seq < total {
		i := int(seq) % len(players)
		next(players[i], kinds[(int(seq)/len(players))%len(kinds)], gamestate.TargetBaron)
	}
	final, finalHash := game.Snapshot(), game.Hash()

	m, err := l.Meta(ctx, "baron1")
	require.NoError(t, err)
	require.Equal(t, uint64(total), m.LastSeq)
	require.Equal(t, finalHash, m.LastHash)

	full := spec.New()
	replay(t, l, full, 1, m.LastSeq)
	require.Equal(t, finalHash, full.Hash())
	require.Equal(t, final, full.Snapshot())

	s, ok, err := l.LoadSnapshot(ctx, "baron1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, snap, s)
	fromSnap := spec.New()
	require.NoError(t, fromSnap.Restore(s.State))
	require.Equal(t, s.Hash, fromSnap.Hash())
	replay(t, l, fromSnap, s.Seq+1, m.LastSeq)
	require.Equal(t, finalHash, fromSnap.Hash())
	require.True(t, bytes.Equal(final, fromSnap.Snapshot()), "snapshot + tail differs from full replay")
}

// replay applies the log's entries from..to to g, checking each recorded
// result.
func replay(t *testing.T, l queue.Log, g gamestate.Game, from, to uint64) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	for from <= to {
		recs, err := l.Read(ctx, "baron1", from, to, 100)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		for _, r := range recs {
			var ev replayEvent
			require.NoError(t, json.Unmarshal(r.Event, &ev))
			require.Equal(t, r.Seq, ev.Seq)
			got := g.Apply(&ev.Entry, nil)
			require.JSONEq(t, string(ev.Result), string(got), fmt.Sprintf("seq %d", r.Seq))
			require.Equal(t, []byte(ev.Result), got, "seq %d: result bytes", r.Seq)
		}
		from = recs[len(recs)-1].Seq + 1
	}
}
