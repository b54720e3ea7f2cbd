package sequencer

import "sync/atomic"

// Stats are a registry's counters, for monitoring. The counts cover every
// room the registry has run since it was made.
type Stats struct {
	Rooms    int    // rooms whose loops run now
	Entries  uint64 // entries made durable and published, server-made ones included
	Acked    uint64 // actions acked, resends answered with their original seq included
	Dups     uint64 // of Acked, the resends
	Rejected uint64 // queued actions the room refused without a seq (the log could not be written)
	Failed   uint64 // rooms that stopped on an error: lease lost, log unwritable, halted
}

// counters are shared by a registry's room loops, which add to them once
// per batch.
type counters struct {
	entries, acked, dups, rejected, failed atomic.Uint64
}

// Stats returns the registry's counters.
func (g *Registry) Stats() Stats {
	c := g.counters
	return Stats{
		Rooms:    len(g.Names()),
		Entries:  c.entries.Load(),
		Acked:    c.acked.Load(),
		Dups:     c.dups.Load(),
		Rejected: c.rejected.Load(),
		Failed:   c.failed.Load(),
	}
}
