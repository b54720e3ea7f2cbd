package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/internal/redistest"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
)

// running is one in-process `gameserver serve`.
type running struct {
	t       *testing.T
	addr    string
	metrics net.Addr // with --metrics-addr
	cancel  context.CancelFunc
	served  chan error
	once    sync.Once
}

func startServe(t *testing.T, args ...string) *running {
	t.Helper()
	cfg, err := parseServe(append([]string{"--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "warn", "--rate-limit", "0"}, args...), envOf(nil))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, cancel: cancel, served: make(chan error, 1)}
	addrs := make(chan bound, 1)
	go func() {
		r.served <- serve(ctx, cfg, newLogger(io.Discard, "warn", "json"), func(b bound) { addrs <- b })
	}()
	select {
	case b := <-addrs:
		r.addr, r.metrics = b.Game.String(), b.Metrics
	case err := <-r.served:
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not listen")
	}
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.served:
			if err != nil {
				r.t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			r.t.Error("serve did not stop within 30s")
		}
	})
}

func (r *running) ready() int {
	resp, err := http.Get("http://" + r.addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// player is a bare protocol client.
type player struct {
	t    *testing.T
	conn *websocket.Conn
}

type wireFrame struct {
	Type    string          `json:"type"`
	Seq     uint64          `json:"seq"`
	CSeq    uint64          `json:"cseq"`
	Code    string          `json:"code"`
	Dup     bool            `json:"dup"`
	Player  string          `json:"player"`
	Kind    string          `json:"kind"`
	Target  string          `json:"target"`
	Epoch   uint64          `json:"epoch"`
	State   json.RawMessage `json:"state"`
	Message string          `json:"message"`
}

func dialPlayer(t *testing.T, addr, room, name string, since uint64) (*player, wireFrame, error) {
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		return nil, wireFrame{}, err
	}
	resp.Body.Close()
	p := &player{t: t, conn: conn}
	t.Cleanup(func() { conn.Close() })
	if err := conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"hello","room":%q,"token":"dev:%s","since":%d}`, room, name, since))); err != nil {
		return nil, wireFrame{}, err
	}
	f, err := p.read()
	if err != nil {
		return nil, wireFrame{}, err
	}
	if f.Type != "welcome" {
		return nil, f, fmt.Errorf("hello answered %s %s: %s", f.Type, f.Code, f.Message)
	}
	return p, f, nil
}

func (p *player) read() (wireFrame, error) {
	p.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, data, err := p.conn.ReadMessage()
	if err != nil {
		return wireFrame{}, err
	}
	var f wireFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return wireFrame{}, err
	}
	return f, nil
}

// act sends one attack and returns the answer to it, collecting the events
// read meanwhile.
func (p *player) act(cseq uint64, events *[]wireFrame) (wireFrame, error) {
	msg := fmt.Sprintf(`{"type":"action","cseq":%d,"kind":"attack","target":"baron"}`, cseq)
	if err := p.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return wireFrame{}, err
	}
	for {
		f, err := p.read()
		if err != nil {
			return wireFrame{}, err
		}
		switch f.Type {
		case "event":
			*events = append(*events, f)
		case "ack", "reject":
			if f.CSeq == cseq {
				return f, nil
			}
		}
	}
}

func logMeta(t *testing.T, url, room string) (queue.Meta, []queue.Record) {
	t.Helper()
	l, err := queue.NewRedisLog(queue.RedisOptions{URL: url})
	require.NoError(t, err)
	defer l.Close()
	ctx := context.Background()
	meta, err := l.Meta(ctx, room)
	require.NoError(t, err)
	recs, err := l.Read(ctx, room, meta.FirstSeq, meta.LastSeq, int(meta.LastSeq)+1)
	require.NoError(t, err)
	return meta, recs
}

// A second server on the same Redis continues a room's sequence after its
// last durable seq, with the same state hash, and a resend of an action the
// first server acked is answered dup with its original seq.
func TestServeWithRedisContinuesAcrossServers(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true, AppendFsync: "always"})
	first := startServe(t, "--redis", rs.URL())
	require.Equal(t, http.StatusOK, first.ready())

	p, _, err := dialPlayer(t, first.addr, "r1", "p1", 0)
	require.NoError(t, err)
	var events []wireFrame
	acked := map[uint64]uint64{}
	for c := uint64(1); c <= 30; c++ {
		f, err := p.act(c, &events)
		require.NoError(t, err)
		require.Equal(t, "ack", f.Type, "%+v", f)
		acked[c] = f.Seq
	}
	first.stop()
	before, _ := logMeta(t, rs.URL(), "r1")

	second := startServe(t, "--redis", rs.URL())
	last := events[len(events)-1].Seq
	p2, welcome, err := dialPlayer(t, second.addr, "r1", "p1", last)
	require.NoError(t, err)
	assert.Equal(t, before.LastSeq, welcome.Seq, "the new server starts from the last durable seq")
	assert.Greater(t, welcome.Epoch, uint64(1), "the new server took the room under a new epoch")
	assert.Nil(t, welcome.State, "a resume within the window gets events, not state")

	f, err := p2.act(30, &events)
	require.NoError(t, err)
	assert.Equal(t, "ack", f.Type)
	assert.True(t, f.Dup, "cseq 30 was sequenced by the first server")
	assert.Equal(t, acked[30], f.Seq)
	f, err = p2.act(31, &events)
	require.NoError(t, err)
	require.Equal(t, "ack", f.Type)
	assert.Greater(t, f.Seq, before.LastSeq)

	// The second server's counters: one dup and one new action acked, the
	// join and that action appended to Redis.
	resp, err := http.Get("http://" + second.addr + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		"lasthit_actions_acked_total 2",
		"lasthit_actions_dup_total 1",
		"lasthit_log_entries_total 2",
		`lasthit_log_appends_failed_total{reason="fenced"} 0`,
		`lasthit_log_append_latency_seconds{quantile="0.99"} `,
	} {
		assert.Contains(t, string(body), "\n"+line, "metrics:\n%s", body)
	}

	second.stop()
	meta, recs := logMeta(t, rs.URL(), "r1")
	require.Equal(t, uint64(1), recs[0].Seq)
	rp := sequencer.NewReplayer(gamestate.Baron().New())
	for i, rec := range recs {
		require.Equal(t, uint64(i+1), rec.Seq, "gapless")
		_, err := rp.Step(rec.Event)
		require.NoError(t, err)
	}
	require.NoError(t, rp.CheckHash(meta.LastHash), "a replay of the whole log ends in the recorded hash")
	var cseqs []uint64
	for _, rec := range recs {
		ev, err := sequencer.DecodeEvent(rec.Event)
		require.NoError(t, err)
		if ev.Player == "p1" {
			cseqs = append(cseqs, ev.CSeq)
		}
	}
	require.Len(t, cseqs, 31, "every acked action once, nothing twice")
}

// While Redis is unreachable the server advances no state: actions are not
// acked (they get reject unavailable, or the room closes), joins
// are refused unavailable, /readyz says not ready, and goroutines stay
// flat. When Redis returns, players resume where they were.
func TestServeWithRedisOutage(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true, AppendFsync: "always"})
	srv := startServe(t, "--redis", rs.URL(), "--join-timeout", "2s")
	p, _, err := dialPlayer(t, srv.addr, "r1", "p1", 0)
	require.NoError(t, err)
	var events []wireFrame
	for c := uint64(1); c <= 5; c++ {
		f, err := p.act(c, &events)
		require.NoError(t, err)
		require.Equal(t, "ack", f.Type)
	}
	durable, _ := logMeta(t, rs.URL(), "r1")
	goroutines := runtime.NumGoroutine()

	rs.Kill()
	f, err := p.act(6, &events)
	if err == nil {
		assert.Equal(t, "reject", f.Type, "nothing is acked while Redis is down: %+v", f)
		assert.Equal(t, "unavailable", f.Code)
	} else {
		// The room stops: 1013 when its append gave up, 1012 when its
		// lease could not be renewed first (reconnect, maybe elsewhere).
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		assert.Contains(t, []int{1012, 1013}, ce.Code)
	}
	redistest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if c := srv.ready(); c != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz answers %d", c)
		}
		return nil
	})
	for i := 0; i < 2; i++ {
		_, f, err := dialPlayer(t, srv.addr, "r1", "p1", 0)
		require.Error(t, err)
		assert.Equal(t, "unavailable", f.Code, "a join while Redis is down: %v", err)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), goroutines+20, "goroutines stay flat during the outage")

	rs.Restart()
	redistest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if c := srv.ready(); c != http.StatusOK {
			return fmt.Errorf("/readyz answers %d", c)
		}
		return nil
	})
	var p2 *player
	var welcome wireFrame
	redistest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		p2, welcome, err = dialPlayer(t, srv.addr, "r1", "p1", events[len(events)-1].Seq)
		return err
	})
	assert.GreaterOrEqual(t, welcome.Seq, durable.LastSeq)
	f, err = p2.act(6, &events)
	require.NoError(t, err)
	require.Equal(t, "ack", f.Type, "%+v", f)
	f, err = p2.act(7, &events)
	require.NoError(t, err)
	require.Equal(t, "ack", f.Type)
	assert.False(t, f.Dup)
	_, recs := logMeta(t, rs.URL(), "r1")
	for i, rec := range recs {
		require.Equal(t, uint64(i+1), rec.Seq, "gapless across the outage")
	}
}
