package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/gamestate"
	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
	"github.com/lasthit/lasthit/session"
)

func envOf(m map[string]string) envLookup {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseServeDefaults(t *testing.T) {
	cfg, err := parseServe(nil, envOf(nil))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:7777", cfg.Addr)
	assert.Empty(t, cfg.Secret, "no secret: dev mode")
	d := session.DefaultOptions()
	d.PingPeriod = 0 // derived from PongWait by the session package
	assert.Equal(t, d, cfg.Session)
	assert.False(t, cfg.Session.DisableRateLimit)

	// The room-limit defaults shown in help are the registry's.
	reg, err := sequencer.NewRegistry(sequencer.Options{Game: gamestate.Baron()})
	require.NoError(t, err)
	defer reg.Shutdown(t.Context())
	assert.Equal(t, reg.Options().MaxPlayers, cfg.MaxPlayers)
	assert.Equal(t, reg.Options().QueueLimit, cfg.QueueLimit)
	assert.Equal(t, reg.Options().MaxRooms, cfg.MaxRooms)
	assert.Equal(t, reg.Options().LeaseRenewers, cfg.LeaseRenewers)
}

func TestParseServeEnvAndFlags(t *testing.T) {
	env := envOf(map[string]string{
		"GAMESERVER_ADDR":         "127.0.0.1:9000",
		"GAMESERVER_SECRET":       "from the environment, long enough",
		"GAMESERVER_RATE_BURST":   "7",
		"GAMESERVER_ALLOW_ORIGIN": "https://a.example, https://b.example",
		"GAMESERVER_PONG_WAIT":    "30s",
	})
	cfg, err := parseServe([]string{"--addr", "0.0.0.0:9001", "--rate-limit", "0", "--allow-origin", "https://c.example", "--max-players", "8"}, env)
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:9001", cfg.Addr, "the command line wins")
	assert.Equal(t, "from the environment, long enough", cfg.Secret)
	assert.Equal(t, 7, cfg.Session.RateBurst)
	assert.True(t, cfg.Session.DisableRateLimit, "--rate-limit 0 turns the limit off")
	assert.Equal(t, []string{"https://a.example", "https://b.example", "https://c.example"}, cfg.Session.AllowOrigins)
	assert.Equal(t, 30*time.Second, cfg.Session.PongWait)
	assert.Equal(t, 8, cfg.MaxPlayers)
}

func TestParseServeErrors(t *testing.T) {
	_, err := parseServe([]string{"-h"}, envOf(nil))
	assert.ErrorIs(t, err, flag.ErrHelp)

	_, err = parseServe(nil, envOf(map[string]string{"GAMESERVER_RATE_LIMIT": "fast"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `GAMESERVER_RATE_LIMIT="fast"`)

	_, err = parseServe([]string{"--rate-burst", "x"}, envOf(nil))
	require.Error(t, err)

	// Every problem at once.
	_, err = parseServe([]string{"--addr", ":7777", "--debug-addr", "0.0.0.0:6060", "--log-level", "loud", "--rate-limit", "-1", "--retain", "0", "--lease-renewers", "0", "--max-known-players", "5", "--join-rate", "-1"}, envOf(nil))
	require.Error(t, err)
	for _, want := range []string{"--debug-addr", "dev mode (no --secret) listens only on a loopback address", "--log-level", "--rate-limit", "--retain 0", "--lease-renewers 0",
		"--max-known-players 5: must be at least --max-players (100)", "--join-rate -1"} {
		assert.Contains(t, err.Error(), want)
	}

	_, err = parseServe([]string{"--secret", "short"}, envOf(nil))
	assert.ErrorContains(t, err, "--secret: must be at least 16 bytes")

	// NaN and infinities pass every comparison: refused, not "no limit".
	for _, v := range []string{"NaN", "+Inf", "-Inf"} {
		_, err = parseServe([]string{"--rate-limit", v, "--join-rate", v}, envOf(nil))
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), "--rate-limit "+v, v)
		assert.Contains(t, err.Error(), "--join-rate "+v, v)
	}
	// Dev mode keeps every listener on loopback, the metrics one too.
	_, err = parseServe([]string{"--metrics-addr", "0.0.0.0:9090"}, envOf(nil))
	assert.ErrorContains(t, err, "--metrics-addr 0.0.0.0:9090: dev mode (no --secret) listens only on a loopback address")
	_, err = parseServe([]string{"--metrics-addr", "127.0.0.1:9090"}, envOf(nil))
	assert.NoError(t, err)
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7777": true,
		"127.1.2.3:1":    true,
		"[::1]:7777":     true,
		"localhost:7777": true,
		":7777":          false,
		"0.0.0.0:7777":   false,
		"[::]:7777":      false,
		"10.0.0.1:7777":  false,
		"example.com:80": false,
		"nonsense":       false,
	} {
		assert.Equal(t, want, isLoopback(addr), addr)
	}
}

func TestHelpAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, run([]string{"help"}, &out, &errOut, envOf(nil)))
	for _, want := range []string{"serve", "token", "--addr", "GAMESERVER_ADDR", "--rate-limit", "--allow-origin", "--max-conns-per-ip"} {
		assert.Contains(t, out.String(), want)
	}
	out.Reset()
	assert.Equal(t, 0, run([]string{"serve", "-h"}, &out, &errOut, envOf(nil)))
	assert.Contains(t, out.String(), "--outbox-frames")
	assert.Equal(t, 2, run([]string{"dance"}, &out, &errOut, envOf(nil)))
	assert.Equal(t, 2, run(nil, &out, &errOut, envOf(nil)))
	errOut.Reset()
	assert.Equal(t, 1, run([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--redis", "http://not-redis"}, &out, &errOut, envOf(nil)))
	assert.Contains(t, errOut.String(), "--redis")
}

func TestTokenCommand(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	var out, errOut bytes.Buffer
	code := run([]string{"token", "--player", "p7", "--room", "r1", "--ttl", "10m"}, &out, &errOut, envOf(map[string]string{"GAMESERVER_SECRET": secret}))
	require.Equal(t, 0, code, errOut.String())
	tok := strings.TrimSpace(out.String())
	player, err := session.VerifyToken([]byte(secret), tok, "r1", time.Now())
	require.NoError(t, err)
	assert.Equal(t, "p7", player)
	_, err = session.VerifyToken([]byte(secret), tok, "r2", time.Now())
	assert.ErrorIs(t, err, session.ErrUnauthorized, "bound to r1")
	_, err = session.VerifyToken([]byte(secret), tok, "r1", time.Now().Add(11*time.Minute))
	assert.ErrorIs(t, err, session.ErrUnauthorized, "expired after --ttl")

	errOut.Reset()
	assert.Equal(t, 2, run([]string{"token", "--player", "p7"}, &out, &errOut, envOf(nil)))
	assert.Contains(t, errOut.String(), "dev:p7", "without a secret it points at dev tokens")
	assert.Equal(t, 2, run([]string{"token", "--secret", secret}, &out, &errOut, envOf(nil)), "--player is required")
}

// --retain reaches the log: after a snapshot, only that many entries up to
// it are kept.
func TestRetainReachesTheLog(t *testing.T) {
	cfg, err := parseServe([]string{"--retain", "3"}, envOf(nil))
	require.NoError(t, err)
	ctx := t.Context()
	l, closeLog, err := buildLog(ctx, cfg, zerolog.Nop())
	require.NoError(t, err)
	defer closeLog()
	epoch, err := l.Acquire(ctx, "r1", queue.Lease{})
	require.NoError(t, err)
	recs := make([]queue.Record, 10)
	for i := range recs {
		recs[i] = queue.Record{Seq: uint64(i + 1), At: int64(i + 1), Event: []byte(`{}`)}
	}
	require.NoError(t, l.Append(ctx, "r1", queue.Batch{Epoch: epoch, Records: recs}))
	require.NoError(t, l.SaveSnapshot(ctx, "r1", queue.Snapshot{Seq: 10, At: 10, State: []byte(`{}`)}))
	meta, err := l.Meta(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, uint64(8), meta.FirstSeq, "entries 8, 9 and 10 kept")
}
