package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
	"github.com/lasthit/lasthit/session"
)

func isAnswer(f frame) bool { return f.Type == "ack" || f.Type == "reject" }

// attackN sends attacks from cseq first to last and returns their acks.
func attackN(t *testing.T, c *client, first, last uint64) []frame {
	t.Helper()
	for cseq := first; cseq <= last; cseq++ {
		c.mustSend(attack(cseq))
	}
	var acks []frame
	for uint64(len(acks)) <= last-first {
		f, err := c.readUntil(isAnswer, nil)
		require.NoError(t, err)
		require.Equal(t, "ack", f.Type, "%s", f)
		acks = append(acks, f)
	}
	return acks
}

// TestResume: a client that disconnects and comes back with since gets
// exactly the events it missed, then the live ones.
func TestResume(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{DisableRateLimit: true}})
	b, _ := h.join(t, "r", "dev:b", 0)
	defer b.close()
	a, _ := h.join(t, "r", "dev:a", 0)
	var seen []frame
	for cseq := uint64(1); cseq <= 3; cseq++ {
		a.mustSend(attack(cseq))
	}
	for acks := 0; acks < 3; {
		f, err := a.readUntil(isAnswer, &seen)
		require.NoError(t, err)
		require.Equal(t, "ack", f.Type)
		acks++
	}
	since := seen[len(seen)-1].Seq
	a.close()

	bAcks := attackN(t, b, 1, 5)
	a2, w := h.join(t, "r", "dev:a", since)
	defer a2.close()
	assert.Empty(t, w.State, "a resume within reach gets the missed events, not the state")
	require.Greater(t, w.Seq, since)
	require.GreaterOrEqual(t, w.Seq, bAcks[4].Seq)

	live := attackN(t, b, 6, 7)
	var got []frame
	for next := since + 1; next <= live[1].Seq; next++ {
		f := a2.mustRead()
		require.Equal(t, "event", f.Type, "only events follow the welcome: %s", f)
		got = append(got, f)
	}
	recs := h.logRecords("r")
	for k, f := range got {
		require.Equal(t, since+1+uint64(k), f.Seq, "gapless, in order, no repeats")
		require.Equal(t, string(recs[f.Seq-1].Event), string(f.raw))
	}
	join := decodeEvent(t, got[w.Seq-since].raw)
	assert.Equal(t, "join", join.Kind, "the first live event is the resumed client's join")
	assert.Equal(t, "a", join.Target)
	a2.expectOpen()
}

// TestResumeTooFarBack: beyond MaxResume, or behind what the log keeps,
// the welcome carries the state and no history follows.
func TestResumeTooFarBack(t *testing.T) {
	run := func(t *testing.T, cfg harnessConfig) {
		cfg.opts.DisableRateLimit = true
		h := startServer(t, cfg)
		b, _ := h.join(t, "r", "dev:b", 0)
		defer b.close()
		acks := attackN(t, b, 1, 12)
		a, w := h.join(t, "r", "dev:a", 1)
		defer a.close()
		require.NotEmpty(t, w.State)
		var st struct {
			HP int64 `json:"baron_hp"`
		}
		require.NoError(t, json.Unmarshal(w.State, &st))
		var res attackResult
		require.NoError(t, json.Unmarshal(h.event(acks[11].Seq).Result, &res))
		assert.Equal(t, res.BaronHP, st.HP, "the state is as of the welcome's seq")
		f := a.mustRead()
		assert.Equal(t, w.Seq+1, f.Seq, "live events follow the state at once: %s", f)
	}
	t.Run("beyond MaxResume", func(t *testing.T) {
		run(t, harnessConfig{opts: session.Options{MaxResume: 3}})
	})
	t.Run("trimmed from the log", func(t *testing.T) {
		run(t, harnessConfig{mem: queue.MemoryOptions{Retain: 2}, seq: sequencer.Options{SnapshotEvery: 4}})
	})
}

// smallBufListener shrinks the kernel send buffer of accepted connections
// so a client that stops reading fills the pipe after a few KiB instead of
// megabytes (loopback autotuning).
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestWriteTimeoutCloses: a client that stops reading while its outbox
// still has room is closed once a write has been stuck for WriteWait (the
// write pump reuses its deadline across wake-ups, so this checks that the
// deadline still reaches the connection), and the room goes on.
func TestWriteTimeoutCloses(t *testing.T) {
	h := startServer(t, harnessConfig{
		opts: session.Options{
			DisableRateLimit: true,
			OutboxFrames:     1 << 20, // the outbox never fills: only the deadline can end the stall
			OutboxBytes:      256 << 20,
			WriteWait:        300 * time.Millisecond,
		},
		wrapLn: func(ln net.Listener) net.Listener { return smallBufListener{ln} },
	})
	stuck, _ := h.join(t, "r", "dev:stuck", 0)
	stuck.conn.NetConn().(*net.TCPConn).SetReadBuffer(4096)
	defer stuck.close()
	actor, _ := h.join(t, "r", "dev:actor", 0)
	defer actor.close()

	cseq := uint64(0)
	for h.srv.Stats().WriteTimeouts == 0 {
		require.Less(t, cseq, uint64(20_000), "no write timed out: %+v", h.srv.Stats())
		cseq++
		actor.mustSend(attack(cseq))
		_, err := actor.readUntil(func(f frame) bool { return f.Type == "ack" && f.CSeq == cseq }, nil)
		require.NoError(t, err)
	}
	t.Logf("write timed out after %d actions", cseq)
	assert.Equal(t, uint64(1), h.srv.Stats().WriteTimeouts, "only the client that stopped reading")
	assert.Zero(t, h.srv.Stats().SlowConsumers, "the deadline, not the outbox bound, closed it")
	assert.Equal(t, websocket.CloseAbnormalClosure, stuck.closeCode(), "closed without a close frame (1006): the connection is stuck")
	actor.mustSend(attack(cseq + 1))
	_, err := actor.readUntil(func(f frame) bool { return f.Type == "ack" && f.CSeq == cseq+1 }, nil)
	require.NoError(t, err, "the room goes on")
}

// TestSlowConsumersClosed4000: ten clients that stop reading are closed
// with 4000 while the others' events keep flowing, gapless.
func TestSlowConsumersClosed4000(t *testing.T) {
	const nSlow, nFast, window = 10, 3, 4
	h := startServer(t, harnessConfig{
		opts: session.Options{
			DisableRateLimit: true,
			OutboxFrames:     64,
			OutboxBytes:      32 << 10,
			WriteWait:        30 * time.Second, // the test, not the deadline, ends the stall
		},
		wrapLn: func(ln net.Listener) net.Listener { return smallBufListener{ln} },
	})

	slow := make([]*client, nSlow)
	for i := range slow {
		slow[i], _ = h.join(t, "r", fmt.Sprintf("dev:slow%d", i), 0)
		slow[i].conn.NetConn().(*net.TCPConn).SetReadBuffer(4096)
		defer slow[i].close()
	}

	type fastClient struct {
		c       *client
		welcome uint64
		acks    atomic.Int64
		mu      sync.Mutex
		events  []frame
		err     error
		done    chan struct{}
	}
	fast := make([]*fastClient, nFast)
	for i := range fast {
		c, w := h.join(t, "r", fmt.Sprintf("dev:fast%d", i), 0)
		defer c.close()
		fc := &fastClient{c: c, welcome: w.Seq, done: make(chan struct{})}
		fast[i] = fc
		go func() {
			defer close(fc.done)
			for {
				f, err := c.read()
				if err != nil {
					fc.mu.Lock()
					fc.err = err
					fc.mu.Unlock()
					return
				}
				switch f.Type {
				case "event":
					fc.mu.Lock()
					fc.events = append(fc.events, f)
					fc.mu.Unlock()
				case "ack":
					fc.acks.Add(1)
				default:
					fc.mu.Lock()
					fc.err = fmt.Errorf("unexpected %s", f)
					fc.mu.Unlock()
					return
				}
			}
		}()
	}
	cseq := uint64(0)
	round := func() {
		t.Helper()
		cseq += window
		for _, fc := range fast {
			for k := cseq - window + 1; k <= cseq; k++ {
				fc.c.mustSend(attack(k))
			}
		}
		checkFor(t, readWait, time.Millisecond, func() error {
			for i, fc := range fast {
				if n := fc.acks.Load(); uint64(n) < cseq {
					return fmt.Errorf("fast client %d has %d acks of %d", i, n, cseq)
				}
			}
			return nil
		})
	}
	for rounds := 0; h.srv.Stats().SlowConsumers < nSlow; rounds++ {
		require.Less(t, rounds, 2000, "slow clients never overflowed: %+v", h.srv.Stats())
		round()
	}
	t.Logf("slow consumers detected after %d actions", cseq*nFast)
	for range 5 {
		round() // the room goes on for the clients that read
	}
	assert.Equal(t, uint64(nSlow), h.srv.Stats().SlowConsumers, "only the clients that stopped reading")

	var wg sync.WaitGroup
	codes := make([]int, nSlow)
	for i, c := range slow {
		wg.Go(func() { codes[i] = c.closeCode() })
	}
	wg.Wait()
	for i, code := range codes {
		assert.Equal(t, 4000, code, "slow client %d", i)
	}

	end := h.roomSeq("r")
	for i, fc := range fast {
		checkFor(t, readWait, time.Millisecond, func() error {
			fc.mu.Lock()
			defer fc.mu.Unlock()
			if fc.err != nil {
				return nil
			}
			if n := len(fc.events); n == 0 || fc.events[n-1].Seq < end {
				return fmt.Errorf("fast client %d behind", i)
			}
			return nil
		})
		fc.mu.Lock()
		require.NoError(t, fc.err, "fast client %d", i)
		for k, ev := range fc.events {
			require.Equal(t, fc.welcome+1+uint64(k), ev.Seq, "fast client %d: gapless", i)
		}
		fc.mu.Unlock()
	}
}

// TestGracefulShutdownLosesNoAckedAction shuts the server down while
// clients act as fast as they are answered. Every client gets close 1001,
// every acked action is in the log at its acked seq, and every action of
// a client in the log was acked to it before the close.
func TestGracefulShutdownLosesNoAckedAction(t *testing.T) {
	const n, window = 8, 8
	h := startServer(t, harnessConfig{
		opts:    session.Options{DisableRateLimit: true},
		wrapLog: func(l queue.Log) queue.Log { return slowLog{Log: l, delay: 3 * time.Millisecond} },
	})
	type result struct {
		player string
		acks   map[uint64]uint64 // cseq → seq
		nAcks  atomic.Int64
		close  int
		err    error
	}
	results := make([]*result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		player := fmt.Sprintf("p%d", i)
		c, _ := h.join(t, "r", "dev:"+player, 0)
		defer c.close()
		r := &result{player: player, acks: map[uint64]uint64{}}
		results[i] = r
		slots := make(chan struct{}, window)
		for range window {
			slots <- struct{}{}
		}
		readerDone := make(chan struct{})
		wg.Go(func() { // writer
			<-start
			for cseq := uint64(1); ; cseq++ {
				select {
				case <-slots:
				case <-readerDone:
					return
				}
				if c.send(attack(cseq)) != nil {
					return
				}
			}
		})
		wg.Go(func() { // reader
			defer close(readerDone)
			for {
				c.conn.SetReadDeadline(time.Now().Add(readWait))
				_, data, err := c.conn.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						r.close = ce.Code
					} else {
						r.err = err
					}
					return
				}
				var f frame
				if err := json.Unmarshal(data, &f); err != nil {
					r.err = err
					return
				}
				switch f.Type {
				case "ack":
					r.acks[f.CSeq] = f.Seq
					r.nAcks.Add(1)
				case "reject":
					if f.Code != "unavailable" && f.Code != "busy" {
						r.err = fmt.Errorf("unexpected %s", data)
						return
					}
				default:
					continue
				}
				slots <- struct{}{}
			}
		})
	}
	close(start)
	checkFor(t, readWait, time.Millisecond, func() error {
		for _, r := range results {
			if got := r.nAcks.Load(); got < 40 {
				return fmt.Errorf("%s has %d acks so far", r.player, got)
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), readWait)
	defer cancel()
	require.NoError(t, h.srv.Shutdown(ctx))
	wg.Wait()

	logged := map[string]map[uint64]uint64{} // player → cseq → seq
	for _, rec := range h.logRecords("r") {
		ev := decodeEvent(t, rec.Event)
		if ev.Player == "" {
			continue
		}
		if logged[ev.Player] == nil {
			logged[ev.Player] = map[uint64]uint64{}
		}
		logged[ev.Player][ev.CSeq] = ev.Seq
	}
	for _, r := range results {
		require.NoError(t, r.err, r.player)
		assert.Equal(t, 1001, r.close, "%s: closed going away", r.player)
		assert.NotEmpty(t, r.acks, r.player)
		assert.Equal(t, logged[r.player], r.acks, "%s: acked actions = its logged actions, at the acked seqs", r.player)
	}
	assert.Equal(t, 0, h.srv.Stats().Open)
}

// TestShutdownInterruptsHello: a connection still waiting for its hello
// is not kept until HelloTimeout: it gets error unavailable and 1001.
func TestShutdownInterruptsHello(t *testing.T) {
	h := startServer(t, harnessConfig{opts: session.Options{HelloTimeout: time.Minute}})
	c := h.dial(t)
	defer c.close()
	checkFor(t, readWait, time.Millisecond, func() error {
		if h.srv.Stats().Open != 1 {
			return errors.New("not admitted yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), readWait)
	defer cancel()
	start := time.Now()
	require.NoError(t, h.srv.Shutdown(ctx))
	assert.Less(t, time.Since(start), 10*time.Second, "well before HelloTimeout")
	f := c.mustRead()
	assert.Equal(t, "error unavailable", f.Type+" "+f.Code)
	assert.Equal(t, 1001, c.closeCode())

	// After shutdown, new connections are refused at the HTTP level.
	_, resp, err := h.dialer().Dial(h.url, nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode)
}
