package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/internal/testutil"
	"github.com/lasthit/lasthit/loadtest"
	"github.com/lasthit/lasthit/sequencer"
	"github.com/lasthit/lasthit/session"
)

// testSecret signs join tokens in the tests that use signed tokens.
var testSecret = []byte("loadtest-e2e-secret-0123456789")

// startServer runs a real server (in-memory log) on a loopback port and
// returns its WebSocket URL. Baron is made short-lived so a few seconds see
// several lives.
func startServer(t *testing.T, secret []byte) string {
	t.Helper()
	url, _, _ := startStoppableServer(t, secret)
	return url
}

// startStoppableServer is startServer that also returns the server's
// registry and a func that shuts it down (at most once).
func startStoppableServer(t *testing.T, secret []byte) (string, *sequencer.Registry, func()) {
	t.Helper()
	reg, err := sequencer.NewRegistry(sequencer.Options{
		Game: gamestate.BaronWith(gamestate.BaronOptions{RespawnDelay: 200 * time.Millisecond, MaxHP: 3000}),
	})
	require.NoError(t, err)
	srv, err := session.NewServer(reg, session.Options{Secret: secret, DisableRateLimit: true})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	hs := httptest.NewServer(mux)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			assert.NoError(t, srv.Shutdown(ctx))
			hs.Close()
		})
	}
	t.Cleanup(stop)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", reg, stop
}

// deadURL is a loopback address nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "ws://" + addr + "/ws"
}

func runLoad(t *testing.T, cfg loadtest.Config) *loadtest.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := loadtest.Run(ctx, cfg)
	require.NoError(t, err)
	var sum strings.Builder
	require.NoError(t, rep.WriteSummary(&sum))
	t.Logf("\n%s", sum.String())
	return rep
}

func requireClean(t *testing.T, rep *loadtest.Report) {
	t.Helper()
	require.Zero(t, rep.Violations, "violations: %v", rep.ViolationSamples)
	assert.Equal(t, rep.Params.Bots, rep.BotsJoined)
	assert.Positive(t, rep.Totals.Acked)
	assert.Positive(t, rep.AckedPerSec)
	assert.Positive(t, rep.EventsDeliveredPerSec)
	assert.Zero(t, rep.Totals.Unacked, "every action answered by the end")
	assert.Zero(t, rep.Totals.UncheckedEvents)
	assert.Positive(t, rep.AckLatencyMS.Count)
	assert.Positive(t, rep.EventLatencyMS.Count)
	assert.Positive(t, rep.LoadCPUCores)
}

func TestSteadyAgainstRealServer(t *testing.T) {
	url := startServer(t, nil)
	rep := runLoad(t, loadtest.Config{
		URLs:     []string{url},
		Bots:     6,
		Rooms:    2,
		Rate:     50,
		Duration: 2 * time.Second,
		Scenario: loadtest.ScenarioSteady,
	})
	requireClean(t, rep)
	assert.Empty(t, rep.Errors)
	assert.Zero(t, rep.Totals.Reconnects)
	assert.Positive(t, rep.Totals.BaronKills, "3000 HP falls within the run")
	assertRate(t, "sent", 6*50, rep.SentPerSec)
	assertRate(t, "acked", 6*50, rep.AckedPerSec)
}

// assertRate checks a rate against what the parameters ask for, within
// bounds wide enough for a busy machine: a count check, not a benchmark.
func assertRate(t *testing.T, what string, want, got float64) {
	t.Helper()
	assert.InEpsilon(t, want, got, 0.4, "%s/s: want about %g", what, want)
}

// Contested bots burst together whenever Baron's HP gets low, on top of
// their steady rate.
func TestContestedBurstsAgainstRealServer(t *testing.T) {
	url := startServer(t, nil)
	const bots, rate, burst = 4, 5, 8
	rep := runLoad(t, loadtest.Config{
		URLs:     []string{url},
		Bots:     bots,
		Rooms:    1,
		Rate:     rate,
		Duration: 2 * time.Second,
		Scenario: loadtest.ScenarioContested,
		Burst:    burst,
	})
	requireClean(t, rep)
	// Without bursts they would send about bots×rate; each burst (one a
	// bot and life, several lives a run) adds burst more.
	steady := float64(bots * rate)
	assert.Greater(t, rep.SentPerSec, 2*steady, "sent %d in %d Baron lives", rep.Totals.Sent, rep.Totals.BaronKills)
}

func TestMixedAgainstRealServer(t *testing.T) {
	url := startServer(t, testSecret)
	rep := runLoad(t, loadtest.Config{
		// Bots that start on the dead URL fail over to the live one.
		URLs:      []string{url, deadURL(t)},
		Bots:      9,
		Rooms:     3,
		Rate:      40,
		Duration:  3 * time.Second,
		Scenario:  loadtest.ScenarioMixed,
		Secret:    testSecret,
		DropEvery: 300 * time.Millisecond,
		LowHP:     1200,
	})
	requireClean(t, rep)
	assert.Positive(t, rep.Totals.Reconnects, "reconnect bots dropped and resumed")
	assert.Positive(t, rep.Totals.Resent, "some drops caught actions in flight")
	assert.Positive(t, rep.Totals.BaronKills)
	assert.Positive(t, rep.Errors["dial"], "the dead URL was tried")
}

func TestSaturateAgainstRealServer(t *testing.T) {
	url := startServer(t, nil)
	rep := runLoad(t, loadtest.Config{
		URLs:     []string{url},
		Bots:     4,
		Rooms:    2,
		Rate:     0, // as fast as acks allow
		Window:   8,
		Duration: time.Second,
		Scenario: loadtest.ScenarioContested,
	})
	requireClean(t, rep)
}

func TestWrongSecretFailsToStart(t *testing.T) {
	url := startServer(t, testSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := loadtest.Run(ctx, loadtest.Config{
		URLs:     []string{url},
		Bots:     2,
		Duration: time.Second,
		Secret:   []byte("not-the-servers-secret-000"),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unauthorized")
}

// TestTokensMatchServer checks the bots' tokens against the server's own
// verification.
func TestTokensMatchServer(t *testing.T) {
	tok := loadtest.JoinTokenForTest(testSecret, "p1", "r1", time.Now().Add(time.Minute))
	player, err := session.VerifyToken(testSecret, tok, "r1", time.Now())
	require.NoError(t, err)
	assert.Equal(t, "p1", player)
	_, err = session.VerifyToken(testSecret, tok, "r2", time.Now())
	assert.Error(t, err, "bound to its room")
	player, err = session.VerifyToken(nil, loadtest.JoinTokenForTest(nil, "p2", "r1", time.Time{}), "r1", time.Now())
	require.NoError(t, err)
	assert.Equal(t, "p2", player)
}

func TestMainWritesReports(t *testing.T) {
	url := startServer(t, nil)
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "report.html")
	var stdout, stderr bytes.Buffer
	code := loadtest.Main(context.Background(), []string{
		"--url", url, "--bots", "4", "--rooms", "2", "--rate", "20", "--duration", "1s",
		"--scenario", "reconnect", "--drop-every", "200ms", "--json", jsonPath, "--html", htmlPath,
	}, &stdout, &stderr)
	t.Logf("\n%s%s", stdout.String(), stderr.String())
	require.Equal(t, loadtest.ExitOK, code)
	assert.Contains(t, stdout.String(), "violations  0: every invariant held")
	assert.Empty(t, stderr.String(), "no progress line when stderr is not a terminal")

	rep := readReport(t, jsonPath)
	assert.Zero(t, rep.Violations)
	assert.Positive(t, rep.AckedPerSec)
	assert.Equal(t, loadtest.ScenarioReconnect, rep.Params.Scenario)
	page, err := os.ReadFile(htmlPath)
	require.NoError(t, err)
	assert.Contains(t, string(page), "<svg")
}

// readReport reads a report Main wrote with --json.
func readReport(t *testing.T, path string) loadtest.Report {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var rep loadtest.Report
	require.NoError(t, json.Unmarshal(data, &rep))
	return rep
}

// Main, as the command runs it, exits 0 after a clean run and
// ExitViolation after a run that saw an invariant broken: here two
// independent servers each sequence the same room, so the room's bots,
// one on each, get different streams.
func TestMainExitStatus(t *testing.T) {
	dir := t.TempDir()
	runMain := func(name string, args ...string) (int, loadtest.Report, string) {
		t.Helper()
		path := filepath.Join(dir, name+".json")
		var stdout, stderr bytes.Buffer
		code := loadtest.Main(context.Background(), append(args, "--json", path), &stdout, &stderr)
		t.Logf("%s:\n%s%s", name, stdout.String(), stderr.String())
		return code, readReport(t, path), stdout.String()
	}

	code, rep, out := runMain("clean", "--url", startServer(t, nil), "--bots", "4", "--rooms", "2", "--rate", "20", "--duration", "1s")
	assert.Equal(t, loadtest.ExitOK, code)
	assert.Zero(t, rep.Violations)
	assert.Contains(t, out, "violations  0: every invariant held")
	assert.Equal(t, 20.0, rep.Params.Rate)
	assertRate(t, "sent", 4*20, rep.SentPerSec)
	assertRate(t, "acked", 4*20, rep.AckedPerSec)

	// Bot 0 starts on the first URL, bot 1 on the second; both are in room 0.
	split := startServer(t, nil) + "," + startServer(t, nil)
	code, rep, out = runMain("split", "--url", split, "--bots", "2", "--rooms", "1", "--rate", "20", "--duration", "500ms")
	assert.Equal(t, loadtest.ExitViolation, code)
	assert.Positive(t, rep.Violations)
	assert.Positive(t, rep.ViolationsByKind["mismatch"], "%v", rep.ViolationsByKind)
	assert.Equal(t, 2, rep.BotsJoined, "the run itself went through")
	assert.Contains(t, out, "VIOLATIONS")
}

// A bot whose resume is refused because the room no longer has the events
// it received (here: its in-memory server went away and the next one
// starts the room over) counts a violation: acked events were lost.
func TestLostEventsAreAViolation(t *testing.T) {
	first, reg, stop := startStoppableServer(t, nil)
	second := startServer(t, nil)
	done := make(chan *loadtest.Report, 1)
	go func() {
		rep, err := loadtest.Run(context.Background(), loadtest.Config{
			URLs: []string{first, second}, Bots: 1, Rooms: 1, Rate: 50, Duration: 3 * time.Second,
			Scenario: loadtest.ScenarioSteady,
		})
		assert.NoError(t, err)
		done <- rep
	}()
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, name := range reg.Names() {
			room, err := reg.Room(context.Background(), name)
			if err != nil {
				return err
			}
			if info, err := room.Info(context.Background()); err == nil && info.Seq >= 5 {
				return nil
			}
		}
		return errors.New("the bot has not acted on the first server yet")
	})
	stop()
	rep := <-done
	assert.Positive(t, rep.ViolationsByKind["welcome_behind"], "%v %v", rep.ViolationsByKind, rep.ViolationSamples)
}

func TestInterruptedRunStillReports(t *testing.T) {
	url := startServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	progressOut := &testutil.SyncBuffer{}
	var rep *loadtest.Report
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep, err = loadtest.Run(ctx, loadtest.Config{
			// Bot 1 starts on the dead URL: a dial error, then the live one.
			URLs: []string{url, deadURL(t)}, Bots: 2, Rate: 20, Duration: time.Minute, Progress: progressOut,
		})
	}()
	// A line reads "  1.0s acting    acked  40/s  events  80/s  ack p99  0.52ms  errors 1  violations 0".
	line := regexp.MustCompile(`acked +[0-9.]+/s +events +[0-9.]+/s +ack p99 +([0-9.]+)ms +errors (\d+) +violations (\d+)`)
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, m := range line.FindAllStringSubmatch(progressOut.String(), -1) {
			if p99, _ := strconv.ParseFloat(m[1], 64); p99 > 0 && m[2] != "0" && m[3] == "0" {
				return nil
			}
		}
		return fmt.Errorf("no progress line with acks' p99, the dial error and no violation: %q", progressOut.String())
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after its context ended")
	}
	require.NoError(t, err)
	assert.True(t, rep.Interrupted)
	assert.Less(t, rep.ElapsedS, 10.0)
	assert.Zero(t, rep.Violations)
	assert.Positive(t, rep.Errors["dial"])
	assert.Contains(t, progressOut.String(), "\r")
}

// recorder is an Observer that keeps everything it is told.
type recorder struct {
	mu     sync.Mutex
	acks   []ackSeen
	events map[string]map[uint64][]string // room → seq → the frames the bots got
}

type ackSeen struct {
	room, player string
	cseq, seq    uint64
	dup          bool
}

func (r *recorder) Acked(room, player string, cseq, seq uint64, dup bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks = append(r.acks, ackSeen{room, player, cseq, seq, dup})
}

func (r *recorder) Event(room, _ string, seq uint64, frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.events == nil {
		r.events = make(map[string]map[uint64][]string)
	}
	if r.events[room] == nil {
		r.events[room] = make(map[uint64][]string)
	}
	r.events[room][seq] = append(r.events[room][seq], string(frame))
}

// The Observer is told of every ack and every event frame, with the bytes
// as the server sent them: each ack names the acking player's own event.
func TestObserverSeesEveryAckAndEvent(t *testing.T) {
	url := startServer(t, nil)
	rec := &recorder{}
	rep := runLoad(t, loadtest.Config{
		URLs:      []string{url},
		Bots:      6,
		Rooms:     2,
		Rate:      40,
		Duration:  2 * time.Second,
		Scenario:  loadtest.ScenarioMixed,
		DropEvery: 300 * time.Millisecond,
		Observer:  rec,
	})
	requireClean(t, rep)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.acks, int(rep.Totals.Acked))
	frames := 0
	for room, seqs := range rec.events {
		for seq, fs := range seqs {
			frames += len(fs)
			for _, f := range fs[1:] {
				require.Equal(t, fs[0], f, "room %s seq %d: every bot got the same bytes", room, seq)
			}
		}
	}
	assert.Equal(t, int(rep.Totals.EventsDelivered), frames)
	dups := 0
	for _, a := range rec.acks {
		fs := rec.events[a.room][a.seq]
		require.NotEmpty(t, fs, "the event of %+v reached its room's bots", a)
		var ev struct {
			Seq    uint64 `json:"seq"`
			Player string `json:"player"`
			CSeq   uint64 `json:"cseq"`
		}
		require.NoError(t, json.Unmarshal([]byte(fs[0]), &ev))
		assert.Equal(t, a.seq, ev.Seq)
		assert.Equal(t, a.player, ev.Player, "%+v", a)
		assert.Equal(t, a.cseq, ev.CSeq, "%+v", a)
		if a.dup {
			dups++
		}
	}
	assert.Equal(t, int(rep.Totals.DupAcks), dups)
}

// stalledURL is a server that completes the WebSocket handshake and then
// answers nothing, like a stopped process whose kernel still holds the
// socket.
func stalledURL(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// frozenURL is a listener that never accepts: the kernel completes TCP
// connections, and the WebSocket handshake gets no answer, as from a
// SIGSTOPped server.
func frozenURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return "ws://" + ln.Addr().String() + "/ws"
}

// A connection that shows nothing for ReadTimeout, its handshake
// included, is dropped, and the bot fails over to the next URL.
func TestReadTimeoutFailsOver(t *testing.T) {
	url := startServer(t, nil)
	start := time.Now()
	rep := runLoad(t, loadtest.Config{
		// A third of the bots start on each; those on the stalled one
		// move on to the frozen one, then to the live one.
		URLs:        []string{stalledURL(t), frozenURL(t), url},
		Bots:        6,
		Rooms:       2,
		Rate:        20,
		Duration:    time.Second,
		PingEvery:   100 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond,
		BackoffMax:  100 * time.Millisecond,
	})
	requireClean(t, rep)
	assert.Positive(t, rep.Errors["conn_lost"], "the stalled server's connections timed out")
	assert.Positive(t, rep.Errors["dial"], "the frozen server's handshakes timed out")
	assert.Equal(t, 0.3, rep.Params.ReadTimeoutS)
	assert.Equal(t, 0.1, rep.Params.BackoffMaxS)
	assert.Less(t, rep.StartedAt.Sub(start), 4*time.Second, "every bot joined within a few read timeouts, not the 5s handshake or 10s join timeouts")
}
