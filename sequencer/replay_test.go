package sequencer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
)

// playRandom drives a room with random joins, leaves, attacks, smites and
// clock ticks (so respawns happen), from seed.
func playRandom(t *testing.T, seed uint64, steps int) (*queue.MemoryLog, *Registry, *Room) {
	rng := rand.New(rand.NewPCG(seed, 99))
	log := queue.NewMemoryLog(queue.MemoryOptions{Retain: 1 << 20})
	clock := newManualClock(int64(seed) * 1_000_003)
	spec := gamestate.BaronWith(gamestate.BaronOptions{MaxHP: 3_000, RespawnDelay: 5 * time.Second})
	g := newTestRegistry(t, Options{Game: spec, Log: log, Clock: clock.now, SnapshotEvery: 37})
	room := openTestRoom(t, g, "rand")
	ctx := context.Background()
	players := []string{"ann", "bob", "cid", "dee", "eve"}
	subs := map[string]*recorder{}
	cseq := map[string]uint64{}
	for i := 0; i < steps; i++ {
		p := players[rng.IntN(len(players))]
		switch x := rng.IntN(20); {
		case x == 0:
			if subs[p] != nil {
				require.NoError(t, room.Leave(ctx, p, subs[p]))
				delete(subs, p)
			}
		case x <= 2:
			subs[p] = &recorder{}
			_, err := room.Join(ctx, p, subs[p])
			require.NoError(t, err)
		case x == 3:
			clock.advance(time.Duration(rng.IntN(4000)) * time.Millisecond)
			flush(t, room)
		default:
			cseq[p]++
			kind := gamestate.KindAttack
			if x%5 == 0 {
				kind = gamestate.KindSmite
			}
			require.NoError(t, room.Push(Action{Player: p, CSeq: cseq[p], Kind: kind, Target: "baron"}))
		}
	}
	flush(t, room)
	return log, g, room
}

// Full replay and snapshot+tail replay end in byte-identical snapshots and
// equal hashes, equal to what the room recorded, for many seeds.
func TestReplayDeterminism(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			log, _, room := playRandom(t, seed, 600)
			ctx := context.Background()
			recs := readLog(t, log, room.Name())
			meta, err := log.Meta(ctx, room.Name())
			require.NoError(t, err)

			full := NewReplayer(room.opts.Game.New())
			var respawns int
			for _, rec := range recs {
				ev, err := full.Step(rec.Event)
				require.NoError(t, err)
				if ev.Kind == gamestate.KindRespawn {
					respawns++
				}
			}
			require.NoError(t, full.CheckHash(meta.LastHash))

			snap, ok, err := log.LoadSnapshot(ctx, room.Name())
			require.NoError(t, err)
			require.True(t, ok)
			tail := NewReplayer(room.opts.Game.New())
			require.NoError(t, tail.Restore(snap))
			for _, rec := range recs[snap.Seq:] {
				_, err := tail.Step(rec.Event)
				require.NoError(t, err)
			}
			require.Equal(t, full.Seq(), tail.Seq())
			require.True(t, bytes.Equal(full.Game().Snapshot(), tail.Game().Snapshot()), "snapshots differ")
			require.Equal(t, full.Game().Hash(), tail.Game().Hash())
			t.Logf("%d entries, %d respawns, snapshot at %d", len(recs), respawns, snap.Seq)
		})
	}
}

// A tampered result is caught at its seq with both results named; a gap
// and a step back in room time are caught too.
func TestReplayCatchesTampering(t *testing.T) {
	log, _, room := playRandom(t, 7, 200)
	recs := readLog(t, log, room.Name())
	var victim int
	for i, rec := range recs {
		if bytes.Contains(rec.Event, []byte(`"damage":`)) {
			victim = i
			break
		}
	}
	require.NotZero(t, victim)
	tampered := bytes.Replace(recs[victim].Event, []byte(`"damage":`), []byte(`"damage":9`), 1)

	rp := NewReplayer(room.opts.Game.New())
	var err error
	for i, rec := range recs {
		frame := rec.Event
		if i == victim {
			frame = tampered
		}
		if _, err = rp.Step(frame); err != nil {
			break
		}
	}
	var mm *MismatchError
	require.ErrorAs(t, err, &mm)
	assert.Equal(t, recs[victim].Seq, mm.Seq)
	assert.Contains(t, mm.Recorded, `"damage":9`)
	assert.NotContains(t, mm.Recomputed, `"damage":9`)

	gap := NewReplayer(room.opts.Game.New())
	_, err = gap.Step(recs[0].Event)
	require.NoError(t, err)
	_, err = gap.Step(recs[2].Event)
	assert.ErrorContains(t, err, "gap or repeat")
}

// A log in which one action is sequenced twice (the same player and cseq
// at two seqs, each with the result the rules compute) does not verify:
// exactly once is part of what a replay checks.
func TestReplayCatchesActionSequencedTwice(t *testing.T) {
	g := gamestate.Baron().New()
	var slab eventSlab
	slab.size = 4096
	frames := [][]byte{}
	for i, e := range []gamestate.Entry{
		{Kind: gamestate.KindJoin, Target: "p1"},
		{Player: "p1", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron"},
		{Player: "p1", CSeq: 2, Kind: gamestate.KindAttack, Target: "baron"},
		{Player: "p1", CSeq: 2, Kind: gamestate.KindAttack, Target: "baron"}, // again
	} {
		e.Seq, e.At = uint64(i+1), int64(1000*(i+1))
		frames = append(frames, slab.encode(g, &e))
	}
	rp := NewReplayer(gamestate.Baron().New())
	for _, f := range frames[:3] {
		_, err := rp.Step(f)
		require.NoError(t, err)
	}
	_, err := rp.Step(frames[3])
	require.Error(t, err)
	assert.Contains(t, err.Error(), `seq 4: player "p1" cseq 2 is not above its cseq 2 at seq 3`)
}

// A room rebuilt from a log whose last hash does not match refuses to open.
func TestRebuildChecksHash(t *testing.T) {
	log, g, room := playRandom(t, 3, 100)
	ctx := context.Background()
	require.NoError(t, g.Stop(ctx, room.Name()))
	meta, err := log.Meta(ctx, room.Name())
	require.NoError(t, err)
	// Append one entry whose result is a lie, under the current epoch.
	epoch, err := log.Acquire(ctx, room.Name(), queue.Lease{})
	require.NoError(t, err)
	lie := fmt.Sprintf(`{"type":"event","seq":%d,"at":%d,"player":"","cseq":0,"kind":"respawn","target":"baron","result":{"ok":true,"baron_hp":1}}`, meta.LastSeq+1, meta.LastAt+1)
	require.NoError(t, log.Append(ctx, room.Name(), queue.Batch{Epoch: epoch, Hash: meta.LastHash,
		Records: []queue.Record{{Seq: meta.LastSeq + 1, At: meta.LastAt + 1, Event: []byte(lie)}}}))
	_, err = g.Room(ctx, room.Name())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorContains(t, err, fmt.Sprintf("seq %d", meta.LastSeq+1))
}

// An append whose reply is lost (the entries are in the log) is
// recognised after the rebuild and acked; one that did not land is
// rejected unavailable with no seq taken; a fenced room stops.
func TestAppendFailures(t *testing.T) {
	ctx := context.Background()
	gate, room, _ := gatedRoom(t, Options{})

	boom := errors.New("connection reset")
	gate.lostAck.Store(true)
	gate.fail.Store(&boom)
	rp := &replies{}
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 1, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	flush(t, room)
	acks, rejects := rp.take()
	require.Empty(t, rejects)
	require.Len(t, acks, 1)
	assert.Equal(t, uint64(2), acks[0].Seq)

	gate.lostAck.Store(false) // now appends fail before writing
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 2, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	flush(t, room)
	acks, rejects = rp.take()
	require.Empty(t, acks)
	require.Len(t, rejects, 1)
	assert.Equal(t, CodeUnavailable, rejects[0].Code)

	gate.fail.Store(nil)
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 2, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	flush(t, room)
	acks, _ = rp.take()
	require.Len(t, acks, 1)
	assert.Equal(t, uint64(3), acks[0].Seq, "the rejected action took no seq")
	assert.False(t, acks[0].Dup)

	// Another owner takes the room: this one is fenced and stops.
	_, err := gate.Acquire(ctx, "r1", queue.Lease{})
	require.NoError(t, err)
	require.NoError(t, room.Push(Action{Player: "p", CSeq: 3, Kind: gamestate.KindAttack, Target: "baron", Reply: rp}))
	select {
	case <-room.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("fenced room did not stop")
	}
	assert.ErrorIs(t, room.Err(), queue.ErrFenced)
	acks, rejects = rp.take()
	assert.Empty(t, acks, "nothing is acked by a fenced owner")
	assert.Empty(t, rejects)
	meta, err := gate.Meta(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, uint64(3), meta.LastSeq, "not one entry of the fenced owner landed")
}
