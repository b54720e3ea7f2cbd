package sequencer

import (
	"cmp"
	"slices"
)

// dedupe remembers, per player, the seqs of the last few sequenced cseqs, so
// a resend is answered with its original seq. The game state keeps the last
// cseq of every player (what makes resends safe after any restart); this
// window only names older originals. It is rebuilt from the log tail.
type dedupe struct {
	window  int
	players map[string]*cseqRing
}

type cseqRing struct {
	next  int
	cseqs []uint64
	seqs  []uint64
}

func newDedupe(window int) dedupe {
	return dedupe{window: window, players: make(map[string]*cseqRing)}
}

func (d *dedupe) add(player string, cseq, seq uint64) {
	r := d.players[player]
	if r == nil {
		r = &cseqRing{cseqs: make([]uint64, d.window), seqs: make([]uint64, d.window)}
		d.players[player] = r
	}
	r.cseqs[r.next], r.seqs[r.next] = cseq, seq
	r.next = (r.next + 1) % d.window
}

func (d *dedupe) lookup(player string, cseq uint64) (uint64, bool) {
	r := d.players[player]
	if r == nil {
		return 0, false
	}
	for i, c := range r.cseqs {
		if c == cseq && r.seqs[i] != 0 {
			return r.seqs[i], true
		}
	}
	return 0, false
}

// prune bounds the players remembered: once there are more than limit, it
// forgets the players keep says no (those who left), least recently active
// first, down to half the limit, so a player who just left still finds its
// originals when it comes back, and a prune runs once per limit/2 new
// players. The window is for members resending after a reconnect, and a
// room's players over its life are unbounded.
func (d *dedupe) prune(limit int, keep func(player string) bool) {
	if len(d.players) <= limit {
		return
	}
	type gone struct {
		player string
		last   uint64 // the seq of its latest action
	}
	var absent []gone
	for p, r := range d.players {
		if !keep(p) {
			absent = append(absent, gone{p, r.seqs[(r.next+d.window-1)%d.window]})
		}
	}
	slices.SortFunc(absent, func(a, b gone) int { return cmp.Compare(a.last, b.last) })
	for _, g := range absent {
		if len(d.players) <= limit/2 {
			return
		}
		delete(d.players, g.player)
	}
}
