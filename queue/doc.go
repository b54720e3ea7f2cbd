// Package queue holds the durable room log: the Log interface and its
// in-memory implementation, the embedded default.
//
// A room's log is the sequence of its entries, seq 1, 2, 3, … without gaps,
// each stored as the event frame exactly as it was broadcast. Appends are
// fenced by an ownership epoch: Acquire hands out a new epoch, greater than
// every earlier one, and an Append that carries any other epoch fails with
// ErrFenced. Appends are idempotent: re-sending a batch that is already in
// the log, with identical content, succeeds without writing it twice; any
// other batch that does not follow the last seq fails with ErrConflict.
//
// Concurrency: a Log is safe for concurrent use. Exactly one goroutine (the
// owning room loop) appends to a given room; any number may read it. Records
// handed to Append are not modified afterwards by their caller, and the log
// never modifies their bytes, so the same event bytes can be sent to players
// while they sit in the log.
package queue
