package gamestate

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// feed applies entries with consecutive seqs and returns their results.
type feed struct {
	g   Game
	seq uint64
}

func (f *feed) apply(at int64, player string, cseq uint64, kind, target string) map[string]any {
	f.seq++
	e := Entry{Seq: f.seq, At: at, Player: player, CSeq: cseq, Kind: kind, Target: target}
	out := f.g.Apply(&e, nil)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		panic("result is not a JSON object: " + string(out))
	}
	return m
}

func TestBaronRules(t *testing.T) {
	sec := int64(time.Second)
	type step struct {
		at     int64
		player string
		cseq   uint64
		kind   string
		target string
		want   map[string]any // keys that must match
	}
	tests := []struct {
		name  string
		opts  BaronOptions
		steps []step
	}{
		{"join assigns teams to the smaller side", BaronOptions{}, []step{
			{1, "", 0, KindJoin, "p1", map[string]any{"ok": true, "team": "blue"}},
			{2, "", 0, KindJoin, "p2", map[string]any{"ok": true, "team": "red"}},
			{3, "", 0, KindJoin, "p3", map[string]any{"ok": true, "team": "blue"}},
			{4, "", 0, KindJoin, "p1", map[string]any{"ok": true, "team": "blue"}},
		}},
		{"attack before join is refused", BaronOptions{}, []step{
			{1, "p1", 1, KindAttack, "baron", map[string]any{"ok": false, "reason": ReasonNotJoined}},
		}},
		{"attack deals damage within the player's power range", BaronOptions{}, []step{
			{1, "", 0, KindJoin, "p1", nil},
			{2, "p1", 1, KindAttack, "baron", map[string]any{"last_hit": false}},
		}},
		{"smite deals fixed damage once per cooldown", BaronOptions{SmiteCooldown: 10 * time.Second}, []step{
			{1, "", 0, KindJoin, "p1", nil},
			{sec, "p1", 1, KindSmite, "baron", map[string]any{"damage": float64(SmiteDamage), "baron_hp": float64(BaronMaxHP - SmiteDamage)}},
			{5 * sec, "p1", 2, KindSmite, "baron", map[string]any{"ok": false, "reason": ReasonCooldown, "ready_at": float64(11 * sec)}},
			{11 * sec, "p1", 3, KindSmite, "baron", map[string]any{"damage": float64(SmiteDamage), "baron_hp": float64(BaronMaxHP - 2*SmiteDamage)}},
		}},
		{"last hit, target_dead, respawn", BaronOptions{MaxHP: 1500, RespawnDelay: 20 * time.Second}, []step{
			{1, "", 0, KindJoin, "p1", nil},
			{2, "", 0, KindJoin, "p2", nil},
			{3, "p1", 1, KindSmite, "baron", map[string]any{"damage": float64(SmiteDamage), "baron_hp": float64(300), "last_hit": false}},
			{4, "p2", 1, KindSmite, "baron", map[string]any{"damage": float64(300), "baron_hp": float64(0), "last_hit": true}},
			{5, "p1", 2, KindAttack, "baron", map[string]any{"ok": false, "reason": ReasonTargetDead}},
			{6, "p2", 2, KindSmite, "baron", map[string]any{"ok": false, "reason": ReasonTargetDead}},
			{7, "", 0, KindRespawn, "baron", map[string]any{"ok": true, "baron_hp": float64(1500)}},
			{8, "", 0, KindRespawn, "baron", map[string]any{"ok": false, "reason": ReasonAlive}},
		}},
		{"leave, and acting after leaving", BaronOptions{}, []step{
			{1, "", 0, KindJoin, "p1", nil},
			{2, "", 0, KindLeave, "p1", map[string]any{"ok": true}},
			{3, "", 0, KindLeave, "p1", map[string]any{"ok": false, "reason": ReasonNotJoined}},
			{4, "p1", 1, KindAttack, "baron", map[string]any{"ok": false, "reason": ReasonNotJoined}},
		}},
		{"unknown kind in a log is refused, not applied", BaronOptions{}, []step{
			{1, "p1", 1, "dance", "baron", map[string]any{"ok": false, "reason": ReasonUnknown}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &feed{g: BaronWith(tt.opts).New()}
			for i, s := range tt.steps {
				got := f.apply(s.at, s.player, s.cseq, s.kind, s.target)
				for k, v := range s.want {
					assert.Equal(t, v, got[k], "step %d (%s %s): field %s in %v", i, s.kind, s.player, k, got)
				}
			}
		})
	}
}

func TestBaronAttackDamageRange(t *testing.T) {
	f := &feed{g: Baron().New()}
	f.apply(1, "", 0, KindJoin, "p1")
	hp := float64(BaronMaxHP)
	for i := 0; i < 10; i++ {
		r := f.apply(int64(2+i), "p1", uint64(i+1), KindAttack, "baron")
		d := r["damage"].(float64)
		assert.GreaterOrEqual(t, d, float64(basePower))
		assert.LessOrEqual(t, d, float64(basePower+basePower/2))
		hp -= d
		assert.Equal(t, hp, r["baron_hp"])
	}
}

func TestBaronRewardGoesToLastHittersTeam(t *testing.T) {
	f := &feed{g: BaronWith(BaronOptions{MaxHP: SmiteDamage}).New()}
	f.apply(1, "", 0, KindJoin, "blue1")
	f.apply(2, "", 0, KindJoin, "red1")
	f.apply(3, "", 0, KindJoin, "blue2")
	r := f.apply(4, "red1", 1, KindSmite, "baron")
	require.Equal(t, true, r["last_hit"])
	var v baronView
	require.NoError(t, json.Unmarshal(f.g.View(), &v))
	gold := map[string]int64{}
	for _, p := range v.Players {
		gold[p.ID] = p.Gold
	}
	assert.Equal(t, map[string]int64{"blue1": 0, "blue2": 0, "red1": BaronReward}, gold)
}

func TestBaronLastCSeqSurvivesSnapshot(t *testing.T) {
	f := &feed{g: Baron().New()}
	f.apply(1, "", 0, KindJoin, "p1")
	f.apply(2, "p1", 7, KindAttack, "baron")
	cseq, seq := f.g.LastCSeq("p1")
	assert.Equal(t, uint64(7), cseq)
	assert.Equal(t, uint64(2), seq)

	g2 := Baron().New()
	require.NoError(t, g2.Restore(f.g.Snapshot()))
	cseq, seq = g2.LastCSeq("p1")
	assert.Equal(t, uint64(7), cseq)
	assert.Equal(t, uint64(2), seq)
	assert.Equal(t, f.g.Hash(), g2.Hash())
	assert.Equal(t, f.g.Snapshot(), g2.Snapshot())
}

// Random entries, applied twice: byte-identical results, snapshots and
// hashes; and the players' order of joining never shows in the bytes.
func TestBaronDeterminism(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		entries := randomEntries(seed, 400)
		a, b := Baron().New(), Baron().New()
		for i := range entries {
			ra := a.Apply(&entries[i], nil)
			rb := b.Apply(&entries[i], nil)
			require.Equal(t, string(ra), string(rb))
		}
		require.Equal(t, a.Snapshot(), b.Snapshot())
		require.Equal(t, a.Hash(), b.Hash())
	}
}

func TestBaronHashIndependentOfJoinOrder(t *testing.T) {
	a, b := Baron().New(), Baron().New()
	fa, fb := &feed{g: a}, &feed{g: b}
	fa.apply(1, "", 0, KindJoin, "x")
	fa.apply(2, "", 0, KindJoin, "y")
	fa.apply(3, "", 0, KindLeave, "x")
	fa.apply(4, "", 0, KindLeave, "y")
	fb.apply(1, "", 0, KindJoin, "y")
	fb.apply(2, "", 0, KindJoin, "x")
	fb.apply(3, "", 0, KindLeave, "y")
	fb.apply(4, "", 0, KindLeave, "x")
	// Teams differ (join order decides them), so compare structure only:
	// players are listed sorted in both.
	var va, vb baronView
	require.NoError(t, json.Unmarshal(a.View(), &va))
	require.NoError(t, json.Unmarshal(b.View(), &vb))
	assert.Equal(t, "x", va.Players[0].ID)
	assert.Equal(t, "x", vb.Players[0].ID)
}

func randomEntries(seed uint64, n int) []Entry {
	rng := rand.New(rand.NewPCG(seed, seed*7))
	players := []string{"p1", "p2", "p3", "p4"}
	kinds := []string{KindAttack, KindAttack, KindAttack, KindSmite, KindJoin, KindLeave, KindRespawn}
	out := make([]Entry, n)
	at := int64(seed) * 1_000_000
	cseq := map[string]uint64{}
	for i := range out {
		at += int64(rng.IntN(int(5 * time.Second)))
		p := players[rng.IntN(len(players))]
		k := kinds[rng.IntN(len(kinds))]
		e := Entry{Seq: uint64(i + 1), At: at, Kind: k, Target: "baron"}
		switch k {
		case KindJoin, KindLeave:
			e.Target = p
		case KindRespawn:
		default:
			cseq[p]++
			e.Player, e.CSeq = p, cseq[p]
		}
		out[i] = e
	}
	return out
}

func TestBaronRestoreRejectsBadState(t *testing.T) {
	g := Baron().New()
	assert.Error(t, g.Restore([]byte("not json")))
	assert.Error(t, g.Restore([]byte(`{"baron_hp":-1}`)))
	assert.Error(t, g.Restore([]byte(`{"baron_hp":5,"alive":true,"players":[{"id":"b"},{"id":"a"}]}`)))
	// Players the rules could not have made: a power of 0 or less would
	// divide by zero in the next attack (found with a forged snapshot).
	for _, p := range []string{
		`{"id":"a","team":"blue","power":-2}`,
		`{"id":"a","team":"blue","power":0}`,
		`{"id":"a","team":"blue","power":601}`,
		`{"id":"a","team":"blue","power":300,"gold":-1}`,
		`{"id":"a","team":"green","power":300}`,
	} {
		assert.Error(t, g.Restore([]byte(`{"baron_hp":5,"alive":true,"players":[`+p+`]}`)), p)
	}
	require.NoError(t, g.Restore([]byte(`{"baron_hp":5,"alive":true,"players":[{"id":"a","team":"red","power":600,"gold":900}]}`)))
}

func TestCheck(t *testing.T) {
	spec := Baron()
	assert.NoError(t, spec.Check(KindAttack, "baron"))
	assert.NoError(t, spec.Check(KindSmite, "baron"))
	assert.True(t, errors.Is(spec.Check("dance", "baron"), ErrUnknownKind))
	assert.True(t, errors.Is(spec.Check(KindJoin, "p1"), ErrUnknownKind), "clients cannot send server-made kinds")
	assert.True(t, errors.Is(spec.Check(KindAttack, "dragon"), ErrBadRequest))
	assert.True(t, errors.Is(spec.Check(KindAttack, ""), ErrBadRequest))
}

func TestCatalog(t *testing.T) {
	c, err := NewCatalog(Baron())
	require.NoError(t, err)
	s, ok := c.Lookup(BaronName)
	require.True(t, ok)
	assert.Equal(t, BaronName, s.Name)
	assert.Equal(t, []string{BaronName}, c.Names())
	_, err = NewCatalog(Baron(), Baron())
	assert.Error(t, err)
	_, err = NewCatalog(Spec{Name: "x"})
	assert.Error(t, err)
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "p1", `a"b\c`, "tab\tnl\n", "\x01", "héllo", "bad\xffutf8"} {
		out := AppendJSONString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(out, &back), "%q -> %s", s, out)
		if s != "bad\xffutf8" {
			assert.Equal(t, s, back)
		}
	}
}

// A new player joins the team with fewer present players, blue on a tie,
// also when its id sorts before players already there (the team was once
// counted while the players shifted, one of them twice).
func TestBaronJoinTeams(t *testing.T) {
	f := &feed{g: Baron().New()}
	assert.Equal(t, "blue", f.apply(1, "", 0, KindJoin, "bob")["team"])
	assert.Equal(t, "red", f.apply(2, "", 0, KindJoin, "cid")["team"])
	assert.Equal(t, "blue", f.apply(3, "", 0, KindJoin, "abe")["team"], "1-1: blue")
	assert.Equal(t, "red", f.apply(4, "", 0, KindJoin, "aaa")["team"], "2-1: red")
	f.apply(5, "", 0, KindLeave, "bob") // blue: abe; red: aaa, cid
	assert.Equal(t, "blue", f.apply(6, "", 0, KindJoin, "a")["team"], "1-2: blue")
}
