// Package session puts the sequencer on the wire: it serves protocol v1
// (PROTOCOL.md) over WebSocket. It decodes and validates client frames,
// checks join tokens, rate-limits players, answers actions with ack or
// reject, forwards the room's event frames byte for byte, serves resumes
// from the log, and bounds every client's backlog. It never changes room
// state: everything goes through sequencer.Room (Join, Push, Leave).
//
// # Goroutines and ownership
//
// A connection has exactly two goroutines (STYLE #5):
//
//   - The read pump is the goroutine net/http runs Server.ServeHTTP on. It
//     runs the handshake (hello, token, since against the log,
//     Registry.Room, since against Room.Info, Room.Join, welcome, history)
//     and, until the handshake ends, it is also the only writer of the
//     connection. Then it starts the write pump and reads frames until
//     the connection ends: it owns the read buffer, the bad-frame budget
//     and the read deadline (which pongs move), and it pushes actions to the
//     room. After both pumps end it leaves the room and releases the
//     player's rate bucket.
//   - The write pump is, once started, the only writer of the connection.
//     It owns the write deadline and the ping ticker. Each wake-up takes
//     every frame queued in the outbox and writes them, one WebSocket text
//     frame per protocol frame (events are never merged or re-encoded),
//     under one write deadline.
//
// The outbox (mutex + slice + notify channel of one) is the only state the
// two pumps and the room loop share. The room loop fills it through the
// session's Subscriber (Publish, Dropped) and Replier (Acked, Rejected)
// methods, which never block: past OutboxFrames or OutboxBytes the outbox
// drops what it holds, Publish returns false, and the connection closes
// with 4000. A client that stops reading therefore costs its room nothing.
//
// Order on the wire for a joining client: welcome, then (since > 0 and the
// events still kept) the events since+1..welcome.seq read from the log,
// then the live events, which the room publishes from welcome.seq+1 on and
// which wait in the outbox while the history is written.
//
// The Server tracks its connections (a WaitGroup and a set guarded by
// Server.mu; the per-IP counts under the same lock). Shutdown stops
// accepting, shuts the registry down (every room sequences, persists and
// answers what is queued; its acks land in the outboxes), then closes each
// session with 1001 after what its outbox holds, and waits.
//
// Lock order: session.mu, then outbox.mu; playerLimits.mu, then
// playerBucket.mu; Server.mu alone. No lock is held while writing to a
// connection or calling into the sequencer.
//
// # Answers
//
// Field names match exactly (never by case folding), and a frame's
// decoders read only the fields of its type: every other member is
// ignored, though the frame must be valid JSON throughout. A field of the
// frame's type named twice is refused.
//
// A frame that is not a well-formed action (not JSON, no or unknown type,
// cseq missing, repeated or not a positive integer, a binary frame, a
// second hello) is answered with error bad_request and the connection
// stays open; more than Options.MaxBadFrames of them within a minute close
// it with 1008. An action with a valid cseq is always answered with it:
// ack once durable, or reject (bad_request, also for a kind or target
// that is not a string or is repeated; unknown_kind, rate_limited, busy,
// unavailable).
// Before the hello is accepted, any failure is one error frame and a close:
// unauthorized or bad_request 1008, room_full or unavailable 1013. A hello
// refused for its since is refused before Room.Join: it does not replace
// the player's live connection nor log a join, and when the log already
// shows since is too large the room is not even opened.
package session
