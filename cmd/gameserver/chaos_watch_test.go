//go:build unix

package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lasthit/lasthit/queue"
)

// What the chaos test watches while it runs: the rooms in Redis
// (chaosRoomWatch) and what the clients receive (chaosObserver,
// chaosWatcher). Each is shared between its own goroutines and the test
// goroutine under its mutex.

// chaosMaxProblems bounds the problems a watcher keeps; the count says
// how many there were.
const chaosMaxProblems = 30

// chaosProblems collects what broke, bounded. Callers hold their own mutex.
type chaosProblems struct {
	n    int
	list []string
}

func (p *chaosProblems) add(format string, args ...any) {
	p.n++
	if len(p.list) < chaosMaxProblems {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

// chaosTakeover is one room whose owner the test killed or stopped: it is
// taken over once an append lands under a newer epoch than the one it had.
// The poller sets at and owner once, under its mutex.
type chaosTakeover struct {
	cause string // "kill1", "kill2", "stop"
	node  string // the node that owned the room
	room  string
	epoch uint64    // the room's epoch when the owner went
	from  time.Time // when the owner went
	at    time.Time // when the first append of a newer epoch was seen; zero until then
	owner string    // RoomInfo.Owner then
}

func (k *chaosTakeover) took() time.Duration { return k.at.Sub(k.from) }

// chaosRoomWatch polls every room's RoomInfo (about every 10ms) for the
// whole run: it times takeovers, and checks that a room's seq, epoch and write
// epoch never go back (a write epoch going back would be a fenced owner's
// append landing).
type chaosRoomWatch struct {
	log   *queue.RedisLog
	rooms []string

	mu      sync.Mutex
	latest  map[string]queue.RoomInfo
	pending []*chaosTakeover
	bad     chaosProblems
	polls   int
}

func newChaosRoomWatch(log *queue.RedisLog, rooms []string) *chaosRoomWatch {
	return &chaosRoomWatch{log: log, rooms: rooms, latest: make(map[string]queue.RoomInfo)}
}

// run polls until ctx ends.
func (w *chaosRoomWatch) run(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, room := range w.rooms {
			w.poll(ctx, room)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *chaosRoomWatch) poll(ctx context.Context, room string) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	info, err := w.log.RoomInfo(pctx, room)
	cancel()
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			w.bad.add("room %s: RoomInfo: %v (Redis stays up in this test)", room, err)
		}
		return
	}
	w.polls++
	prev, seen := w.latest[room]
	if seen {
		switch {
		case info.LastSeq < prev.LastSeq:
			w.bad.add("room %s: last seq went back from %d to %d", room, prev.LastSeq, info.LastSeq)
		case info.Epoch < prev.Epoch:
			w.bad.add("room %s: epoch went back from %d to %d", room, prev.Epoch, info.Epoch)
		case info.WriteEpoch < prev.WriteEpoch:
			w.bad.add("room %s: an append under epoch %d landed after one under epoch %d (seq %d): a fenced owner wrote",
				room, info.WriteEpoch, prev.WriteEpoch, info.LastSeq)
		}
	}
	w.latest[room] = info
	for _, k := range w.pending {
		if k.room == room && k.at.IsZero() && info.WriteEpoch > k.epoch {
			k.at, k.owner = now, info.Owner
		}
	}
}

// info returns the latest RoomInfo of every room.
func (w *chaosRoomWatch) info() map[string]queue.RoomInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]queue.RoomInfo, len(w.latest))
	for r, i := range w.latest {
		out[r] = i
	}
	return out
}

// expect starts timing a takeover.
func (w *chaosRoomWatch) expect(k *chaosTakeover) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, k)
}

// waiting lists the takeovers of ks not seen yet.
func (w *chaosRoomWatch) waiting(ks []*chaosTakeover) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, k := range ks {
		if k.at.IsZero() {
			out = append(out, fmt.Sprintf("%s (%s of %s, epoch %d)", k.room, k.cause, k.node, k.epoch))
		}
	}
	return out
}

func (w *chaosRoomWatch) findings() (n int, list []string, polls int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad.n, append([]string(nil), w.bad.list...), w.polls
}

// chaosAction names one action of one player.
type chaosAction struct {
	room, player string
	cseq         uint64
}

// chaosFrameKey names one seq of one room.
type chaosFrameKey struct {
	room string
	seq  uint64
}

// chaosFrame is what the clients received for one seq.
type chaosFrame struct {
	sum    [sha256.Size]byte
	player string // the first client that received it
}

// chaosObserver is the loadtest.Observer of the chaos test: it remembers
// the seq every action was acked with and a hash of every event frame per
// (room, seq), and notes any two answers that disagree. Memory is bounded
// by the run: one entry per action and per seq.
type chaosObserver struct {
	mu     sync.Mutex
	acks   map[chaosAction]uint64
	frames map[chaosFrameKey]chaosFrame
	nAcks  int
	nDups  int
	nFrame int
	bad    chaosProblems
}

func newChaosObserver() *chaosObserver {
	return &chaosObserver{acks: make(map[chaosAction]uint64), frames: make(map[chaosFrameKey]chaosFrame)}
}

func (o *chaosObserver) Acked(room, player string, cseq, seq uint64, dup bool) {
	k := chaosAction{room, player, cseq}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nAcks++
	if dup {
		o.nDups++
	}
	if prev, ok := o.acks[k]; ok && prev != seq {
		o.bad.add("room %s: %s cseq %d acked with seq %d, then with seq %d (dup %v)", room, player, cseq, prev, seq, dup)
		return
	}
	o.acks[k] = seq
}

func (o *chaosObserver) Event(room, player string, seq uint64, frame []byte) {
	sum := sha256.Sum256(frame)
	k := chaosFrameKey{room, seq}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nFrame++
	prev, ok := o.frames[k]
	switch {
	case !ok:
		o.frames[k] = chaosFrame{sum: sum, player: player}
	case prev.sum != sum:
		o.bad.add("room %s seq %d: %s and %s received different frames (%s)", room, seq, prev.player, player, frame)
	}
}

// chaosWatcher is a bare client that joins a room on the server about to be
// stopped and does nothing but read, with a read deadline past the stop,
// so it is still there when the server resumes and closes it.
type chaosWatcher struct {
	room, player string
	conn         *websocket.Conn
	done         chan struct{} // closed when the connection has ended
	code         int           // close code received; set before done is closed
	err          error
}

// dialChaosWatcher joins room on url as player and reads until the
// connection ends or deadline. Every event it reads goes to obs.
func dialChaosWatcher(url, room, player string, deadline time.Time, obs *chaosObserver) (*chaosWatcher, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	w := &chaosWatcher{room: room, player: player, conn: conn, done: make(chan struct{})}
	hello := fmt.Sprintf(`{"type":"hello","room":%q,"token":"dev:%s","since":0}`, room, player)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(hello)); err != nil {
		conn.Close()
		return nil, err
	}
	_, data, err := conn.ReadMessage()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var f wireFrame
	if err := json.Unmarshal(data, &f); err != nil || f.Type != "welcome" {
		conn.Close()
		return nil, fmt.Errorf("hello answered %s", data)
	}
	conn.SetReadDeadline(deadline)
	go w.read(obs)
	return w, nil
}

func (w *chaosWatcher) read(obs *chaosObserver) {
	defer close(w.done)
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				w.code = ce.Code
			}
			w.err = err
			return
		}
		var f wireFrame
		if json.Unmarshal(data, &f) == nil && f.Type == "event" {
			obs.Event(w.room, w.player, f.Seq, data)
		}
	}
}

// ended reports whether the connection has ended.
func (w *chaosWatcher) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}
