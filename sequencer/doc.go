// Package sequencer gives every action its place in its room's single order
// and applies it.
//
// Two numbers, two owners:
//
//   - The stamp (Stamp) records arrival. A Stamper hands out a server-wide
//     monotonic counter plus the room time At; Push takes it while holding
//     the room queue's lock and appends the action under the same lock, so a
//     room queue is always in stamp order, and At grows strictly within a
//     room.
//   - The seq is the room's log position. Only the room loop gives it, in
//     stamp order, without gaps: an action dropped before sequencing (a
//     resent cseq) takes no seq.
//
// Ownership: one goroutine per room, the room loop (Room.run), owns the
// room's Game, its seq, its subscribers and its dedupe window. Everything
// else talks to it through the queue (Push) or through typed commands with a
// one-slot reply channel (Join, Leave, Flush). The first push after a
// drain wakes the loop (later ones find it already signalled); the loop
// drains the whole queue, sequences and applies the batch, appends it to
// the log in one call, and only after that succeeds publishes the events
// and answers the submitters (persist, then tell). Timers the game asks for
// (Baron's respawn) become server-made entries pushed through the same
// queue.
//
// Subscribers and Repliers are called from the room loop and must never
// block: a subscriber that cannot take a batch is dropped, and the loop goes
// on.
//
// Ownership across servers: a room is opened under a lease
// (Options.LeaseTTL, Log.Acquire) and its epoch; the registry's leaser
// goroutine renews every open room's lease (Options.LeaseRenewers at a
// time) and halts a room whose lease is lost or could not be renewed in
// time. A renewal refused while the room is taking its lease again (after a
// failed append) was for the old epoch and is ignored. The leaser leaves a
// room alone while it rebuilds (epoch 0): the rebuild renews its own lease
// between pages (Room.keepLease), since reading a long log can outlast
// the lease. A halted room stops at once: its
// queue is neither sequenced nor answered, its in-flight append is
// abandoned (the room's context is canceled), and its members are dropped
// with the reason, so they reconnect to the room's new owner. Every append
// carries the epoch, so a late one from a halted or paused owner is fenced
// by the log.
//
// Lock order: Registry.mu, then nothing; roomQueue.mu, then nothing. No lock
// is held while calling a Log, a Subscriber or a Replier.
package sequencer
