// Package loadtest runs bots against lasthit servers and checks, on
// everything they receive, the invariants of DESIGN.md. Bots are black-box
// clients: they speak protocol v1 (PROTOCOL.md) over WebSocket and import
// nothing of the server, like any game client.
//
// Run(ctx, Config) runs one load test and returns a Report; Main is the
// `gameserver loadtest` command around it (flags, summary table, report
// files, exit status).
//
// # A run
//
//  1. Join: every bot dials its server, sends hello and waits for its
//     welcome. The run starts once every bot has joined (or was refused)
//     or ConnectTimeout has passed; it fails if none joined. A bot that
//     cannot connect keeps trying meanwhile.
//  2. Act, for Duration: bots attack Baron as their scenario says
//     (steady, contested, reconnect; mixed deals those out within each
//     room, each room starting one kind further on), each with at most Window actions in flight.
//  3. Drain, for at most Drain: bots send nothing new and wait for the
//     answer to every action and the event of every ack, reconnecting and
//     resending if need be; then they close with 1000.
//
// # Goroutines and ownership
//
//   - Run's goroutine is the coordinator (runner): it starts the bots,
//     awaits their joins, opens and ends the phases by closing the start
//     and stop channels, and every second swaps the shards' histogram
//     windows into the series (collector) and rewrites the progress line.
//     It alone owns the collector, the totals and the series.
//   - Each bot has one goroutine (bot.loop) that owns all of the bot's
//     state: its ledger (what it has seen and sent), its schedule, its
//     current connection, and the writing side of that connection. Bots
//     never share state except through the types below.
//   - Each connection has one read pump (conn.readPump), started by its
//     bot: the only reader of the socket. It stamps, hashes and decodes
//     each frame and hands it to the bot through a bounded channel (a full
//     channel stops reading, as a slow client would). It ends when the
//     socket ends, after setting conn.err and closing the channel; the bot
//     handles every frame up to that close before it dials again or exits,
//     so frames of an old connection never mix with a new one's.
//     The pump reads every frame into one reused buffer and owns its
//     frameDecoder: what it hands over (decoded frame, interned strings,
//     the copy an Observer gets) never refers to that buffer.
//     Server pings are answered by gorilla's default handler from the read
//     pump (WriteControl, which may run alongside the bot's writes). A
//     connection that shows no frame for Config.ReadTimeout ends like a
//     lost one, and the bot dials the next URL.
//   - Config.Observer, if set, is called by the bots' goroutines, for
//     every ack and event frame as the bot handles it: it must be safe for
//     concurrent use and fast. The event frames it gets are immutable.
//
// Shared, each under its own mutex and never calling out while holding it:
// roomCheck (one per room: the ring of recent events by seq and Baron's
// life), room.mu (the contested bots' burst times), shard (latency
// histograms of the current window and error counts, for a group of bots;
// counters are atomics), violations (count, kinds, samples). Lock order:
// roomCheck.mu, then violations.mu; every other lock is a leaf.
//
// # What is checked
//
// Per bot (ledger), on its stream of frames:
//   - the events' seqs run on without a gap or a repeat from the welcome
//     (or from the resumed since, through the history) across reconnects;
//     a welcome with state starts the stream anew after its seq, a welcome
//     whose seq is behind what the bot has seen is a violation;
//   - every ack, dup acks included, names the bot's own event: the event
//     at the acked seq has this player and the acked cseq (checked when
//     the event comes, or against the room's ring if it came before);
//     ack dup:true only for an action sent again; no answer for an action
//     not in flight;
//   - the bot's own events carry cseqs it sent, in increasing order (so no
//     action took two seqs), and never one that was rejected.
//
// Per room (roomCheck), across its bots: the same seq has the same bytes
// for every bot (a hash per seq in a ring of CheckWindow seqs; a bot
// further behind is counted unchecked, not compared), and, following the
// events in seq order, Baron's HP goes down by each hit's damage, each
// life has exactly one last_hit:true (the hit that takes HP to 0), no hit
// lands after it, and a life ends before a respawn starts the next.
//
// Latency: from sending an action to its ack and to its own event, from a
// ping to its pong, and from a lost connection to the next welcome, in
// HdrHistograms (1µs–60s, three digits); actions resent on a new
// connection are counted but not timed. The report also gives the CPU
// the load test process used while acting, since bots usually share the
// machine with the server.
package loadtest
