package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/internal/testutil"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
	"github.com/lasthit/lasthit/session"
)

// readWait bounds every wait for a frame: long enough for a loaded CI
// machine under -race, short enough that a hang fails instead of stalling.
const readWait = 15 * time.Second

var secret = []byte("0123456789abcdef0123456789abcdef")

// harness is a real server on a loopback port: registry, memory log,
// session server, httptest server.
type harness struct {
	t   testing.TB
	log *queue.MemoryLog
	reg *sequencer.Registry
	srv *session.Server
	ts  *httptest.Server
	url string
}

type harnessConfig struct {
	opts    session.Options
	seq     sequencer.Options
	mem     queue.MemoryOptions
	wrapLn  func(net.Listener) net.Listener
	wrapLog func(queue.Log) queue.Log
}

func startServer(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	h := &harness{t: t, log: queue.NewMemoryLog(cfg.mem)}
	cfg.seq.Game = gamestate.Baron()
	cfg.seq.Log = h.log
	if cfg.wrapLog != nil {
		cfg.seq.Log = cfg.wrapLog(h.log)
	}
	reg, err := sequencer.NewRegistry(cfg.seq)
	require.NoError(t, err)
	h.reg = reg
	srv, err := session.NewServer(reg, cfg.opts)
	require.NoError(t, err)
	h.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	h.ts = httptest.NewUnstartedServer(mux)
	if cfg.wrapLn != nil {
		h.ts.Listener = cfg.wrapLn(h.ts.Listener)
	}
	h.ts.Start()
	h.url = "ws" + strings.TrimPrefix(h.ts.URL, "http") + "/ws"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		h.ts.Close()
	})
	return h
}

// token signs a token for player valid for an hour in any room.
func token(t testing.TB, player string) string {
	tok, err := session.SignToken(secret, session.TokenClaims{Player: player, Expires: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	return tok
}

// frame is any server frame, decoded loosely.
type frame struct {
	Type    string          `json:"type"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Room    string          `json:"room"`
	Player  string          `json:"player"`
	Seq     uint64          `json:"seq"`
	Epoch   uint64          `json:"epoch"`
	State   json.RawMessage `json:"state"`
	CSeq    uint64          `json:"cseq"`
	Dup     bool            `json:"dup"`
	Kind    string          `json:"kind"`
	Target  string          `json:"target"`
	Result  json.RawMessage `json:"result"`
	T       json.RawMessage `json:"t"`
	Server  int64           `json:"server"`
	URL     string          `json:"url"`
	raw     []byte
}

func (f frame) String() string { return string(f.raw) }

// client is a real WebSocket client. Its methods return errors so that
// they can run on any goroutine; the must* helpers are for the test's own.
type client struct {
	t    testing.TB
	conn *websocket.Conn
}

func (h *harness) dialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: readWait}
}

func (h *harness) dial(t testing.TB) *client {
	t.Helper()
	conn, resp, err := h.dialer().Dial(h.url, nil)
	require.NoError(t, err)
	resp.Body.Close()
	return &client{t: t, conn: conn}
}

// join dials and sends hello, and returns the welcome.
func (h *harness) join(t testing.TB, room, tok string, since uint64) (*client, frame) {
	t.Helper()
	c := h.dial(t)
	c.mustSend(hello(room, tok, since))
	w := c.mustRead()
	require.Equal(t, "welcome", w.Type, "%s", w)
	return c, w
}

func hello(room, tok string, since uint64) string {
	return fmt.Sprintf(`{"type":"hello","room":%q,"token":%q,"since":%d}`, room, tok, since)
}

func attack(cseq uint64) string {
	return fmt.Sprintf(`{"type":"action","cseq":%d,"kind":"attack","target":"baron"}`, cseq)
}

func (c *client) send(s string) error {
	c.conn.SetWriteDeadline(time.Now().Add(readWait))
	return c.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

func (c *client) mustSend(s string) {
	c.t.Helper()
	require.NoError(c.t, c.send(s))
}

// read returns the next frame.
func (c *client) read() (frame, error) {
	c.conn.SetReadDeadline(time.Now().Add(readWait))
	mt, data, err := c.conn.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if mt != websocket.TextMessage {
		return frame{}, fmt.Errorf("server sent message type %d", mt)
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return frame{}, fmt.Errorf("server frame %q is not JSON: %w", data, err)
	}
	f.raw = data
	return f, nil
}

func (c *client) mustRead() frame {
	c.t.Helper()
	f, err := c.read()
	require.NoError(c.t, err)
	return f
}

// readUntil reads frames until pred holds for one, which it returns;
// the events read, including a matching one, are appended to seen, if not
// nil.
func (c *client) readUntil(pred func(frame) bool, seen *[]frame) (frame, error) {
	for {
		f, err := c.read()
		if err != nil {
			return frame{}, err
		}
		if seen != nil && f.Type == "event" {
			*seen = append(*seen, f)
		}
		if pred(f) {
			return f, nil
		}
	}
}

// mustAnswer reads until the next ack or reject and returns it.
func (c *client) mustAnswer() frame {
	c.t.Helper()
	f, err := c.readUntil(func(f frame) bool { return f.Type == "ack" || f.Type == "reject" }, nil)
	require.NoError(c.t, err)
	return f
}

// closeCode reads until the connection ends and returns the close code
// the server sent (-1 if it ended without one).
func (c *client) closeCode() int {
	for {
		c.conn.SetReadDeadline(time.Now().Add(readWait))
		if _, _, err := c.conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return -1
		}
	}
}

// expectOpen proves the connection is open and answering: a ping gets its
// pong (frames queued before it are skipped).
func (c *client) expectOpen() {
	c.t.Helper()
	c.mustSend(`{"type":"ping","t":4242}`)
	f, err := c.readUntil(func(f frame) bool { return f.Type == "pong" }, nil)
	require.NoError(c.t, err, "connection should stay open")
	require.JSONEq(c.t, "4242", string(f.T))
}

func (c *client) close() {
	c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.conn.Close()
}

// checkFor polls f until it returns nil or total passes.
func checkFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	testutil.CheckFor(t, total, every, f)
}

// logRecords returns the whole log of room.
func (h *harness) logRecords(room string) []queue.Record {
	h.t.Helper()
	ctx := context.Background()
	meta, err := h.log.Meta(ctx, room)
	require.NoError(h.t, err)
	recs, err := h.log.Read(ctx, room, meta.FirstSeq, meta.LastSeq, int(meta.LastSeq+1))
	require.NoError(h.t, err)
	return recs
}

// event returns the event logged at seq in room "r".
func (h *harness) event(seq uint64) sequencer.Event {
	h.t.Helper()
	recs, err := h.log.Read(context.Background(), "r", seq, seq, 1)
	require.NoError(h.t, err)
	require.Len(h.t, recs, 1)
	return decodeEvent(h.t, recs[0].Event)
}

// roomSeq is the room's last seq.
func (h *harness) roomSeq(room string) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readWait)
	defer cancel()
	r, err := h.reg.Room(ctx, room)
	require.NoError(h.t, err)
	info, err := r.Info(ctx)
	require.NoError(h.t, err)
	return info.Seq
}

func decodeEvent(t testing.TB, raw []byte) sequencer.Event {
	t.Helper()
	ev, err := sequencer.DecodeEvent(raw)
	require.NoError(t, err)
	return ev
}

// slowLog makes every append take a while, so that batches are in flight
// for most of the time.
type slowLog struct {
	queue.Log
	delay time.Duration
}

func (l slowLog) Append(ctx context.Context, room string, b queue.Batch) error {
	time.Sleep(l.delay)
	return l.Log.Append(ctx, room, b)
}

type attackResult struct {
	Damage  int64 `json:"damage"`
	BaronHP int64 `json:"baron_hp"`
	LastHit bool  `json:"last_hit"`
}
