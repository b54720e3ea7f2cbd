// Package queue holds the durable room log: the Log interface, its
// in-memory implementation (MemoryLog, the embedded default) and its Redis
// implementation (RedisLog). Both pass the same contract suite
// (queue/logtest).
//
// A room's log is the sequence of its entries, seq 1, 2, 3, … without gaps,
// each stored as the event frame exactly as it was broadcast. Appends are
// fenced by an ownership epoch: Acquire hands out a new epoch, greater than
// every earlier one, and an Append that carries any other epoch fails with
// ErrFenced (so does epoch 0, which is never handed out). Appends are
// idempotent: re-sending a batch that is already in the log, with identical
// content (stamp, room time and event bytes of every record), succeeds
// without writing it twice; any other batch that does not follow the last
// seq fails with ErrConflict. Retention: saving a snapshot at seq S trims
// the entries below S-Retain+1; reading below the oldest kept entry fails
// with ErrTrimmed.
//
// Concurrency: a Log is safe for concurrent use. Exactly one goroutine (the
// owning room loop) appends to a given room; any number may read it. Records
// handed to Append are not modified afterwards by their caller, and the log
// never modifies their bytes, so the same event bytes can be sent to players
// while they sit in the log.
//
// # Redis
//
// Keys ("lh" is RedisOptions.Prefix; the braces are a cluster hash tag, so
// every key of a room, and so every script, lives in one slot):
//
//	lh:{room}:log    stream, one entry per seq with ID <seq>-0; fields
//	                 ev (the event bytes) and st (the stamp,
//	                 "<counter>:<at>", both decimal: stamp counter, room
//	                 time in ns)
//	lh:{room}:meta   hash: seq (last), hash (state hash after it, decimal
//	                 uint64), at (its room time), epoch (of the last
//	                 append), first (oldest kept seq; absent means 1),
//	                 game, created and active (unix ms), ixat (last index
//	                 refresh, unix ms)
//	lh:{room}:epoch  string, the fencing counter: INCR on every Acquire
//	lh:{room}:snap   hash: seq, hash, at, state
//	lh:{room}:owner  string "<epoch>|<node id>|<url>" with a PX expiry:
//	                 the room's lease (lh_acquire_v1, lh_renew_v1,
//	                 lh_release_v1)
//	lh:node:<id>     string, the node's URL with a PX expiry: its
//	                 heartbeat, read to tell a live owner from a dead one
//	lh:rooms         sorted set of room names, score = last activity (unix
//	                 ms), refreshed at most every IndexInterval per room
//
// Appending is one Lua script per batch (lh_append_v1, run by EVALSHA and
// loaded again on NOSCRIPT): it checks the epoch (else ErrFenced), XADDs the
// records and updates meta when the batch follows the last seq, succeeds
// without writing when the batch is already there with identical ev and st
// (a retry), and refuses anything else (ErrConflict). Because the script is
// idempotent, the log retries it itself, with the same arguments, after any
// error that leaves the outcome unknown (go-redis's own retries are off).
// Snapshots are a second script (lh_snapshot_v1) that also trims the stream
// (XTRIM MINID) and moves meta's first.
//
// An append that returned nil is in Redis, as durable as Redis's AOF
// settings make it: with appendfsync always it survives a Redis crash; with
// everysec up to about a second of acked appends can be lost if Redis
// crashes; without the AOF nothing is crash-safe. RedisLog.Persistence
// reads the settings and says which.
//
// Ownership: a RedisLog holds no per-room state; all of it is in Redis. Its
// metrics (Stats) are guarded by their own mutex and atomics.
package queue
