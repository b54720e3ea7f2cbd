// Package gamestate holds the game rules: the Game interface and the
// reference Baron game.
//
// A Game is a pure state machine. Apply takes one sequenced entry and returns
// its result; it does no I/O, reads no clock and uses no unseeded randomness:
// time reaches the rules only as the entry's At, and randomness only through
// a PRNG whose state is part of the game state. Applying the same entries in
// the same order therefore yields the same state, byte for byte, on any
// machine.
//
// Ownership: a Game value is owned by exactly one goroutine (the room loop in
// package sequencer) and is not safe for concurrent use. A Spec and a Catalog
// are immutable after construction and safe to share.
//
// Canonical bytes: Snapshot and Hash never depend on map iteration order;
// per-player state is kept in a slice sorted by player id.
package gamestate
