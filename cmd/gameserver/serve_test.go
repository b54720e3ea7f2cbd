package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/internal/testutil"
)

// TestServe runs serve in process on a loopback port: probes answer, a
// client joins and acts, and cancelling (what SIGINT/SIGTERM do) shuts
// down gracefully: the client gets 1001 and serve returns nil.
func TestServe(t *testing.T) {
	cfg, err := parseServe([]string{"--addr", "127.0.0.1:0", "--log-level", "debug", "--log-format", "json"}, envOf(nil))
	require.NoError(t, err)
	var logs testutil.SyncBuffer
	logger := newLogger(&logs, cfg.LogLevel, cfg.LogFormat)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, logger, func(b bound) { addrs <- b.Game }) }()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-served:
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not listen")
	}
	base := "http://" + addr.String()

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
	}

	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+addr.String()+"/ws", nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	read := func() map[string]any {
		t.Helper()
		_, data, err := conn.ReadMessage()
		require.NoError(t, err)
		var f map[string]any
		require.NoError(t, json.Unmarshal(data, &f))
		return f
	}
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","room":"r1","token":"dev:p1"}`)))
	welcome := read()
	assert.Equal(t, "welcome", welcome["type"])
	assert.Equal(t, "p1", welcome["player"])
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"action","cseq":1,"kind":"attack","target":"baron"}`)))
	for f := read(); f["type"] != "ack"; f = read() {
		require.Equal(t, "event", f["type"], "%v", f)
	}

	// The counters at /metrics, in the Prometheus text format.
	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, line := range []string{
		"lasthit_rooms 1",
		"lasthit_actions_acked_total 1",
		"lasthit_entries_total 2", // the join and the attack
		`lasthit_connections{state="joined"} 1`,
		`lasthit_connections_closed_total{reason="slow_consumer"} 0`,
		`lasthit_rejects_total{code="busy"} 0`,
		"go_goroutines ",
	} {
		assert.Contains(t, string(body), "\n"+line, "metrics:\n%s", body)
	}
	assert.NotContains(t, string(body), "lasthit_log_", "no Redis log, no Redis figures")

	cancel()
	var ce *websocket.CloseError
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			require.True(t, errors.As(err, &ce), "want a close frame, got %v", err)
			break
		}
	}
	assert.Equal(t, 1001, ce.Code)
	select {
	case err := <-served:
		assert.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
	out := logs.String()
	assert.Contains(t, out, `"dev mode`, "dev mode is logged as a warning")
	assert.Contains(t, out, `"player":"p1"`, "session logs carry the player")
	assert.Contains(t, out, `"shut down"`)
}

func TestServeRefusesDevModeOnPublicAddress(t *testing.T) {
	cfg, err := parseServe(nil, envOf(nil))
	require.NoError(t, err)
	cfg.Addr = "0.0.0.0:0"
	err = serve(context.Background(), cfg, newLogger(io.Discard, "info", "json"), func(bound) {
		t.Error("listened")
	})
	assert.ErrorContains(t, err, "dev mode")
}

// TestServeMetricsAddr: with --metrics-addr, /metrics moves to a listener
// of its own (with the probes), off the game listener, and closes with
// serve.
func TestServeMetricsAddr(t *testing.T) {
	r := startServe(t, "--metrics-addr", "127.0.0.1:0")
	require.NotNil(t, r.metrics)
	game, _ := net.ResolveTCPAddr("tcp", r.addr)
	get := func(addr net.Addr, path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr.String() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get(r.metrics, "/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "\nlasthit_rooms 0")
	for _, path := range []string{"/healthz", "/readyz"} {
		code, body := get(r.metrics, path)
		assert.Equal(t, http.StatusOK, code, "%s on the metrics listener: %s", path, body)
		code, body = get(game, path)
		assert.Equal(t, http.StatusOK, code, "%s on the game listener: %s", path, body)
	}
	code, _ = get(game, "/metrics")
	assert.Equal(t, http.StatusNotFound, code, "metrics left the game listener")
	code, _ = get(r.metrics, "/ws")
	assert.Equal(t, http.StatusNotFound, code, "no game on the metrics listener")

	r.stop() // serve returns nil
	_, err := http.Get("http://" + r.metrics.String() + "/metrics")
	assert.Error(t, err, "the metrics listener closes with serve")
}
