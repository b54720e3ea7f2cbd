package sequencer

import "bytes"

// Verdicts explain contested outcomes after the fact: for every entry whose
// result says "last_hit":true, the competing entries against the same
// target just before and just after it, with their stamps and room times.
// Ops read them in `gameserver replay`.

// Contender is an entry that competed for a verdict.
type Contender struct {
	Event
	Stamp   uint64 // arrival stamp, 0 when unknown (a log read from a file)
	DeltaNs int64  // At minus the winner's At
}

// Verdict is one decided last hit.
type Verdict struct {
	Winner Contender
	Before []Contender // oldest first
	After  []Contender
}

// VerdictTracker collects verdicts from a stream of replayed entries.
type VerdictTracker struct {
	window  int
	recent  []Contender // last window contenders, oldest first
	pending []*Verdict  // verdicts still collecting After
}

// NewVerdictTracker keeps up to window contenders on each side.
func NewVerdictTracker(window int) *VerdictTracker {
	return &VerdictTracker{window: max(window, 1)}
}

var lastHitTrue = []byte(`"last_hit":true`)

// contends reports whether ev is a player's action against a target
// (server-made entries never contend).
func contends(ev *Event) bool { return ev.Player != "" && ev.Target != "" }

// Observe feeds the next entry and returns the verdicts it completed. The
// tracker keeps ev (its Result aliases the frame it was decoded from) until
// the verdicts it takes part in are returned: the caller must not reuse the
// frame's bytes before then.
func (v *VerdictTracker) Observe(ev Event, stamp uint64) []Verdict {
	if !contends(&ev) {
		return nil
	}
	var done []Verdict
	keep := v.pending[:0]
	for _, p := range v.pending {
		if p.Winner.Target == ev.Target {
			p.After = append(p.After, Contender{Event: ev, Stamp: stamp, DeltaNs: ev.At - p.Winner.At})
		}
		if len(p.After) >= v.window {
			done = append(done, *p)
			continue
		}
		keep = append(keep, p)
	}
	v.pending = keep
	c := Contender{Event: ev, Stamp: stamp}
	if bytes.Contains(ev.Result, lastHitTrue) {
		w := &Verdict{Winner: c}
		for _, r := range v.recent {
			if r.Target == ev.Target {
				r.DeltaNs = r.At - ev.At
				w.Before = append(w.Before, r)
			}
		}
		v.pending = append(v.pending, w)
	}
	if len(v.recent) == v.window {
		copy(v.recent, v.recent[1:])
		v.recent = v.recent[:v.window-1]
	}
	v.recent = append(v.recent, c)
	return done
}

// Flush returns the verdicts still collecting contenders after them.
func (v *VerdictTracker) Flush() []Verdict {
	out := make([]Verdict, 0, len(v.pending))
	for _, p := range v.pending {
		out = append(out, *p)
	}
	v.pending = nil
	return out
}
