package loadtest

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{URLs: []string{"ws://127.0.0.1:1/ws"}}
	c.setDefaults()
	require.NoError(t, c.validate())
	assert.Equal(t, 10, c.Bots)
	assert.Equal(t, 5, c.Rooms, "two bots a room")
	assert.Zero(t, c.Rate, "0 means as fast as acks allow")
	assert.Equal(t, 16, c.Window)
	assert.Equal(t, 10*time.Second, c.Duration)
	assert.Equal(t, 5*time.Second, c.Drain)
	assert.Equal(t, ScenarioSteady, c.Scenario)
	assert.Len(t, c.RunID, 6)
	assert.NotZero(t, c.Seed)
	assert.LessOrEqual(t, c.Seed, uint64(maxSeed))
	assert.Equal(t, time.Second, c.PingEvery)
	assert.Equal(t, 15*time.Second, c.ReadTimeout)
	assert.Equal(t, 2*time.Second, c.BackoffMax)
	assert.Nil(t, c.Observer)
	assert.Equal(t, int64(2000), c.LowHP)
	assert.Equal(t, 4096, c.CheckWindow)

	odd := Config{URLs: c.URLs, Bots: 7}
	odd.setDefaults()
	assert.Equal(t, 4, odd.Rooms, "rounded up")
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := Config{
		URLs:        []string{"http://x/ws", "ws://", "::bad"},
		Bots:        -1,
		Rooms:       -2,
		Rate:        -1,
		Window:      maxWindow + 1,
		Duration:    -time.Second,
		Drain:       -time.Second,
		Scenario:    "chaos",
		RunID:       "Not_OK",
		PingEvery:   time.Millisecond,
		ReadTimeout: -time.Second,
		BackoffMax:  -time.Second,
		LowHP:       -5,
		Burst:       -1,
		CheckWindow: -1,
		Seed:        maxSeed + 1,
	}
	c.setDefaults()
	err := c.validate()
	require.Error(t, err)
	for _, want := range []string{
		`"http://x/ws": scheme must be ws or wss`, `"ws://": no host`, `"::bad"`,
		"Bots:", "Rooms:", "Rate:", "Window:", "Duration:", "Drain:", "Scenario:", `"chaos"`,
		"RunID:", "PingEvery:", "ReadTimeout:", "BackoffMax:", "LowHP:", "Burst:", "CheckWindow:", "Seed:",
	} {
		assert.Contains(t, err.Error(), want)
	}

	none := Config{}
	none.setDefaults()
	assert.ErrorContains(t, none.validate(), "URLs: at least one")

	rooms := Config{URLs: []string{"ws://h/ws"}, Bots: 2, Rooms: 3}
	rooms.setDefaults()
	assert.ErrorContains(t, rooms.validate(), "3 rooms need at least as many bots")

	// Pongs keep a quiet connection alive, so pings must come within the
	// read timeout.
	slow := Config{URLs: []string{"ws://h/ws"}, PingEvery: 2 * time.Second, ReadTimeout: 2 * time.Second}
	slow.setDefaults()
	assert.ErrorContains(t, slow.validate(), "PingEvery: must be 10ms or more and below ReadTimeout (2s), got 2s")
	slow.PingEvery = 20 * time.Second // above the default ReadTimeout
	slow.ReadTimeout = 0
	slow.setDefaults()
	assert.ErrorContains(t, slow.validate(), "below ReadTimeout (15s)")
	fast := Config{URLs: []string{"ws://h/ws"}, PingEvery: 250 * time.Millisecond, ReadTimeout: 1500 * time.Millisecond, BackoffMax: 200 * time.Millisecond}
	fast.setDefaults()
	assert.NoError(t, fast.validate())
	assert.Equal(t, 200*time.Millisecond, fast.BackoffMax, "kept")

	nan := Config{URLs: []string{"ws://h/ws"}, Rate: math.NaN()}
	nan.setDefaults()
	assert.ErrorContains(t, nan.validate(), "Rate:")
}

func TestConfigBehaviour(t *testing.T) {
	c := Config{Scenario: ScenarioMixed, Rooms: 2}
	// Room 0 has bots 0, 2, 4, 6; room 1 has 1, 3, 5, 7, starting one
	// kind further on.
	got := []Scenario{c.behaviour(0), c.behaviour(2), c.behaviour(4), c.behaviour(6), c.behaviour(1), c.behaviour(3)}
	assert.Equal(t, []Scenario{ScenarioSteady, ScenarioContested, ScenarioReconnect, ScenarioSteady, ScenarioContested, ScenarioReconnect}, got)

	// Rooms of two, the default (rooms = bots/2): all three kinds.
	c = Config{Scenario: ScenarioMixed, Bots: 10}
	c.setDefaults()
	kinds := map[Scenario]int{}
	for i := range c.Bots {
		kinds[c.behaviour(i)]++
	}
	assert.Len(t, kinds, 3, "mixed: all three, %v", kinds)
	c.Scenario = ScenarioReconnect
	assert.Equal(t, ScenarioReconnect, c.behaviour(3))
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, err := parseFlags([]string{
		"--url", "ws://127.0.0.1:1/ws, ws://127.0.0.1:2/ws", "--url=ws://127.0.0.1:3/ws",
		"--bots", "200", "--rooms", "100", "--rate", "0", "--window", "8", "--duration", "30s", "--drain", "2s",
		"--scenario", "contested", "--secret", "s3cr3t-s3cr3t-s3cr3t", "--json", "r.json", "--html", "r.html",
		"--seed", "42", "--run-id", "abc", "--low-hp", "900", "--burst", "4", "--hold-back", "5ms",
		"--drop-every", "2s", "--ping-every", "500ms", "--check-window", "128", "--connect-timeout", "3s",
		"--read-timeout", "3s", "--backoff-max", "250ms",
	}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, Config{
		URLs:           []string{"ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws", "ws://127.0.0.1:3/ws"},
		Bots:           200,
		Rooms:          100,
		Rate:           0,
		Window:         8,
		Duration:       30 * time.Second,
		Drain:          2 * time.Second,
		ConnectTimeout: 3 * time.Second,
		Scenario:       ScenarioContested,
		Secret:         []byte("s3cr3t-s3cr3t-s3cr3t"),
		RunID:          "abc",
		Seed:           42,
		PingEvery:      500 * time.Millisecond,
		ReadTimeout:    3 * time.Second,
		BackoffMax:     250 * time.Millisecond,
		DropEvery:      2 * time.Second,
		LowHP:          900,
		HoldBack:       5 * time.Millisecond,
		Burst:          4,
		CheckWindow:    128,
		JSONPath:       "r.json",
		HTMLPath:       "r.html",
	}, cfg)

	cfg, err = parseFlags([]string{"--url", "ws://h/ws"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, float64(defaultRate), cfg.Rate, "--rate defaults to 10/s")
	assert.Equal(t, 10, cfg.Bots)
	assert.Nil(t, cfg.Secret, "dev tokens")

	_, err = parseFlags([]string{"--bots", "many"}, &stderr)
	assert.Error(t, err)
	_, err = parseFlags([]string{"--url", "ws://h/ws", "extra"}, &stderr)
	assert.ErrorContains(t, err, "unexpected arguments: extra")

	// Zero in Config means the default; on the command line it is a mistake.
	_, err = parseFlags([]string{"--url", "ws://h/ws", "--bots", "0"}, &stderr)
	assert.EqualError(t, err, "--bots must be at least 1, got 0")
	_, err = parseFlags([]string{"--url", "ws://h/ws", "--duration=0s"}, &stderr)
	assert.EqualError(t, err, "--duration must be positive, got 0s")
	_, err = parseFlags([]string{"--url", "ws://h/ws", "-bots", "-3", "--duration", "-1s"}, &stderr)
	assert.EqualError(t, err, "--bots must be at least 1, got -3; --duration must be positive, got -1s")
}

func TestMainUsage(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	assert.Equal(t, ExitOK, Main(ctx, []string{"--help"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "-scenario")

	errOut.Reset()
	assert.Equal(t, ExitUsage, Main(ctx, []string{"--nope"}, &out, &errOut))

	errOut.Reset()
	assert.Equal(t, ExitUsage, Main(ctx, []string{"--bots", "3"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "URLs: at least one")

	errOut.Reset()
	assert.Equal(t, ExitUsage, Main(ctx, []string{"--url", "ws://h/ws", "--scenario", "x", "--window", "-1"}, &out, &errOut))
	assert.True(t, strings.Contains(errOut.String(), "Scenario:") && strings.Contains(errOut.String(), "Window:"), errOut.String())

	for _, args := range [][]string{{"--bots", "0"}, {"--duration", "0"}} {
		errOut.Reset()
		assert.Equal(t, ExitUsage, Main(ctx, append([]string{"--url", "ws://h/ws"}, args...), &out, &errOut), "%v", args)
		assert.Contains(t, errOut.String(), "loadtest: "+args[0]+" must be", "%v", args)
	}
	assert.Empty(t, out.String())
}

func TestRunFailsWhenNoBotCanJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{
		URLs:           []string{"ws://127.0.0.1:1/ws"}, // nothing listens on port 1
		Bots:           2,
		Duration:       time.Second,
		ConnectTimeout: 5 * time.Second,
	})
	assert.Nil(t, rep)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no bot could join")
	assert.Contains(t, err.Error(), "dial")
}
