package loadtest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"
	"time"
)

// Scenario says how bots act.
type Scenario string

// Scenarios (PROTOCOL.md's reference game, Baron).
const (
	// ScenarioSteady: every bot attacks at Rate, on its own schedule.
	ScenarioSteady Scenario = "steady"
	// ScenarioContested: bots attack at Rate until Baron's HP falls to
	// LowHP, hold back, then burst together, racing for the last hit.
	ScenarioContested Scenario = "contested"
	// ScenarioReconnect: bots attack at Rate and drop their connection at
	// random (about every DropEvery), resuming with since and resending
	// what was not answered.
	ScenarioReconnect Scenario = "reconnect"
	// ScenarioMixed: the three above across the bots of every room.
	ScenarioMixed Scenario = "mixed"
)

var scenarios = []Scenario{ScenarioSteady, ScenarioContested, ScenarioReconnect, ScenarioMixed}

// Config configures a load test. Zero values take the documented defaults,
// filled in by Run; a negative number is an error, never a special value.
type Config struct {
	// URLs are the servers' WebSocket endpoints, ws:// or wss://, path
	// included (ws://127.0.0.1:8080/ws). Bot i starts on URLs[i%len(URLs)]
	// and moves to the next one when its connection is lost or closed with
	// 1001, 1012 or 1013; a redirect frame sends it where the frame says.
	// Required.
	URLs []string
	// Bots is how many bots run; each is one player on one connection.
	// Default 10.
	Bots int
	// Rooms is how many rooms the bots play in; bot i joins room i%Rooms.
	// Default: Bots/2 rounded up (two players a room, the duel shape).
	Rooms int
	// Rate is the actions per second each bot sends. 0, the zero value,
	// means as fast as acks allow: each bot keeps Window actions in
	// flight. (The command's --rate defaults to 10.)
	Rate float64
	// Window bounds the actions one bot has sent and not yet seen answered.
	// Keep it within the server's dedupe window (the sequencer's default
	// is 32): a resend older than that is answered reject, not ack dup.
	// Default 16.
	Window int
	// Duration is how long bots act. Default 10s.
	Duration time.Duration
	// Drain is how long bots may still wait, after Duration, for the
	// answers and events of the actions they sent. Default 5s.
	Drain time.Duration
	// ConnectTimeout bounds the start: the run starts once every bot has
	// joined or this has passed, and fails if no bot joined. Default 10s.
	ConnectTimeout time.Duration
	// Scenario is how bots act. Default ScenarioSteady.
	Scenario Scenario
	// Secret, when set, is the servers' token secret: bots sign their own
	// join tokens with it. Empty: bots send dev:<player> tokens, which
	// only a server in dev mode accepts.
	Secret []byte
	// RunID names this run's rooms and players (lt<RunID>-r<n>,
	// lt<RunID>-b<n>), so a run never meets the state or the cseqs of an
	// earlier one. 1-16 characters of [a-z0-9]. Default: random.
	RunID string
	// Seed seeds the bots' randomness (schedules, drops, backoff).
	// Default: random; the report records it.
	Seed uint64

	// PingEvery is how often each bot measures its round trip with a ping
	// frame. It must be below ReadTimeout: the pongs are what keeps a
	// quiet connection alive. Default 1s.
	PingEvery time.Duration
	// ReadTimeout: a connection that shows no frame for this long is
	// dropped, and the bot fails over to the next URL (a stopped or
	// partitioned server answers nothing, not even a close). It also
	// bounds the WebSocket handshake, when shorter than the 5s the
	// handshake is otherwise given. Default 15s.
	ReadTimeout time.Duration
	// BackoffMax caps the backoff between failed connection attempts,
	// which doubles from 50ms (with jitter of ±50%). Default 2s.
	BackoffMax time.Duration
	// DropEvery is the mean time between two drops of a reconnect bot.
	// Default 1s.
	DropEvery time.Duration
	// LowHP is the Baron HP at or below which contested bots hold back.
	// Default 2000.
	LowHP int64
	// HoldBack is how long contested bots hold back before bursting
	// together. Default 20ms.
	HoldBack time.Duration
	// Burst is how many attacks a contested bot sends at once (within
	// Window). Default 8.
	Burst int
	// CheckWindow is how many recent events per room are kept to compare
	// the bots' streams; events further behind are counted unchecked.
	// Default 4096.
	CheckWindow int

	// JSONPath, if set, is where the report is written as JSON.
	JSONPath string
	// HTMLPath, if set, is where the report is written as a
	// self-contained HTML page.
	HTMLPath string
	// CPUProfilePath, if set, is where Main writes a CPU profile of the
	// bots for the whole run (Run itself ignores it).
	CPUProfilePath string
	// Progress, if set, receives a status line every second, rewritten in
	// place with \r: meant for a terminal. Default: none.
	Progress io.Writer
	// Observer, if set, is told of every ack and every event frame any bot
	// receives, as it receives them. Default: none.
	Observer Observer
}

// Observer watches what the bots receive, for checks beyond the run's own
// (a test comparing the bots' view with a server's log, say). Bots call it
// from their own goroutines, many at once, in the order each bot receives
// its frames: implementations must be safe for concurrent use, and fast,
// since a bot reads nothing while it waits for them.
type Observer interface {
	// Acked: player, a bot in room, received an ack of its action cseq
	// naming seq (dup: the action was sequenced before, at seq). Every ack
	// is reported, including one the run's checks count as a violation.
	Acked(room, player string, cseq, seq uint64, dup bool)
	// Event: player, a bot in room, received an event frame of seq, live
	// or from the history of a resume. frame is the frame's bytes as
	// received; nobody modifies it after the call, so it may be kept, and
	// it must not be modified.
	Event(room, player string, seq uint64, frame []byte)
}

// Bounds of Config, so a typo cannot ask for a million bots or a year.
const (
	maxBots        = 100_000
	maxWindow      = 1024
	maxDuration    = 24 * time.Hour
	maxRate        = 1e6
	maxCheckWindow = 1 << 20
	minPingEvery   = 10 * time.Millisecond
	maxRunIDLen    = 16
	maxSeed        = 1<<53 - 1
)

func (c *Config) setDefaults() {
	if c.Bots == 0 {
		c.Bots = 10
	}
	if c.Rooms == 0 {
		c.Rooms = (c.Bots + 1) / 2
	}
	if c.Window == 0 {
		c.Window = 16
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = 5 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Scenario == "" {
		c.Scenario = ScenarioSteady
	}
	if c.RunID == "" {
		c.RunID = randomID(6)
	}
	if c.Seed == 0 {
		c.Seed = randomSeed()
	}
	if c.PingEvery == 0 {
		c.PingEvery = time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 15 * time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 2 * time.Second
	}
	if c.DropEvery == 0 {
		c.DropEvery = time.Second
	}
	if c.LowHP == 0 {
		c.LowHP = 2000
	}
	if c.HoldBack == 0 {
		c.HoldBack = 20 * time.Millisecond
	}
	if c.Burst == 0 {
		c.Burst = 8
	}
	if c.CheckWindow == 0 {
		c.CheckWindow = 4096
	}
}

// validate reports every problem at once. It runs after setDefaults, so
// what it sees is what the run would use.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.URLs) == 0 {
		bad("URLs: at least one server URL is required (ws://host:port/ws)")
	}
	for _, u := range c.URLs {
		if err := checkURL(u); err != nil {
			bad("URLs: %w", err)
		}
	}
	if c.Bots < 0 || c.Bots > maxBots {
		bad("Bots: must be 1-%d, got %d", maxBots, c.Bots)
	}
	switch {
	case c.Rooms < 0:
		bad("Rooms: must be positive, got %d", c.Rooms)
	case c.Bots > 0 && c.Rooms > c.Bots:
		bad("Rooms: %d rooms need at least as many bots, got %d", c.Rooms, c.Bots)
	}
	if c.Rate < 0 || c.Rate > maxRate || math.IsNaN(c.Rate) {
		bad("Rate: must be 0 (as fast as acks allow) up to %g actions/s per bot, got %v", maxRate, c.Rate)
	}
	if c.Window < 0 || c.Window > maxWindow {
		bad("Window: must be 1-%d, got %d", maxWindow, c.Window)
	}
	if c.Duration < 0 || c.Duration > maxDuration {
		bad("Duration: must be positive and at most %v, got %v", maxDuration, c.Duration)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Drain", c.Drain}, {"ConnectTimeout", c.ConnectTimeout}, {"DropEvery", c.DropEvery}, {"HoldBack", c.HoldBack},
		{"ReadTimeout", c.ReadTimeout}, {"BackoffMax", c.BackoffMax},
	} {
		if d.v < 0 || d.v > maxDuration {
			bad("%s: must be positive and at most %v, got %v", d.name, maxDuration, d.v)
		}
	}
	if c.PingEvery < minPingEvery || (c.ReadTimeout > 0 && c.PingEvery >= c.ReadTimeout) {
		bad("PingEvery: must be %v or more and below ReadTimeout (%v), got %v", minPingEvery, c.ReadTimeout, c.PingEvery)
	}
	if !validScenario(c.Scenario) {
		bad("Scenario: must be one of %s, got %q", scenarioList(), c.Scenario)
	}
	if len(c.RunID) > maxRunIDLen || !lowerAlnum(c.RunID) {
		bad("RunID: must be 1-%d characters of [a-z0-9], got %q", maxRunIDLen, c.RunID)
	}
	if c.Seed > maxSeed {
		bad("Seed: must be at most %d (exact in JSON), got %d", uint64(maxSeed), c.Seed)
	}
	if c.LowHP < 0 {
		bad("LowHP: must be positive, got %d", c.LowHP)
	}
	if c.Burst < 0 || c.Burst > maxWindow {
		bad("Burst: must be 1-%d, got %d", maxWindow, c.Burst)
	}
	if c.CheckWindow < 0 || c.CheckWindow > maxCheckWindow {
		bad("CheckWindow: must be 1-%d, got %d", maxCheckWindow, c.CheckWindow)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loadtest: invalid config: %w", err)
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q: %v", raw, err)
	case u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Errorf("%q: scheme must be ws or wss", raw)
	case u.Host == "":
		return fmt.Errorf("%q: no host", raw)
	}
	return nil
}

func validScenario(s Scenario) bool {
	for _, v := range scenarios {
		if s == v {
			return true
		}
	}
	return false
}

func scenarioList() string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = string(s)
	}
	return strings.Join(names, "|")
}

func lowerAlnum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// behaviour is what one bot does: the scenario itself, or for mixed, one
// of the three others. Within a room, consecutive bots take turns, each
// room starting one kind further on, so a mixed room of three or more bots
// has each kind and a mixed run of rooms of two (the default) has all
// three too.
func (c *Config) behaviour(bot int) Scenario {
	if c.Scenario != ScenarioMixed {
		return c.Scenario
	}
	kinds := [...]Scenario{ScenarioSteady, ScenarioContested, ScenarioReconnect}
	return kinds[(bot/c.Rooms+bot%c.Rooms)%len(kinds)]
}

func (c *Config) roomName(i int) string   { return fmt.Sprintf("lt%s-r%d", c.RunID, i) }
func (c *Config) playerName(i int) string { return fmt.Sprintf("lt%s-b%d", c.RunID, i) }

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

func randomSeed() uint64 {
	var b [8]byte
	rand.Read(b[:])
	s := uint64(0)
	for _, x := range b {
		s = s<<8 | uint64(x)
	}
	s &= maxSeed // exact as a JSON number
	if s == 0 {
		s = 1
	}
	return s
}
