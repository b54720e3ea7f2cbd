package loadtest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCollectorWindows(t *testing.T) {
	shards := []*shard{newShard(), newShard()}
	c := newCollector(shards)
	t0 := time.Unix(1000, 0)
	shards[0].record(metricAck, time.Hour) // before the start: discarded
	shards[0].add(cAcked, 5)
	c.begin(t0)

	// Window 1: 100 acks of 1..100 ms over both shards.
	for i := 1; i <= 100; i++ {
		shards[i%2].record(metricAck, time.Duration(i)*time.Millisecond)
		shards[i%2].add(cAcked, 1)
	}
	shards[1].add(cEvents, 300)
	shards[0].countError("reject.busy")
	p := c.tick(t0.Add(time.Second), 0, false)
	assert.Equal(t, 1.0, p.T)
	assert.Equal(t, 100.0, p.AckedPerSec, "counted from the start, not before")
	assert.Equal(t, 300.0, p.EventsPerSec)
	assert.Equal(t, 1.0, p.ErrorsPerSec)
	assert.Equal(t, int64(100), p.AckMS.Count)
	assert.InDelta(t, 50, p.AckMS.P50, 0.1)
	assert.InDelta(t, 90, p.AckMS.P90, 0.1)
	assert.InDelta(t, 99, p.AckMS.P99, 0.1)
	assert.InDelta(t, 100, p.AckMS.Max, 0.1)

	// Window 2: two seconds, 10 slow acks.
	for range 10 {
		shards[0].record(metricAck, 2*time.Second)
		shards[0].add(cAcked, 1)
	}
	p = c.tick(t0.Add(3*time.Second), 2, true)
	assert.Equal(t, 5.0, p.AckedPerSec)
	assert.Equal(t, int64(10), p.AckMS.Count)
	assert.InDelta(t, 2000, p.AckMS.P50, 2, "the window holds only its own values")
	assert.True(t, p.Draining)
	assert.Equal(t, uint64(2), p.Violations)

	// Window 3: empty.
	p = c.tick(t0.Add(4*time.Second), 2, true)
	assert.Equal(t, Latency{}, p.AckMS)

	total := summarize(c.total[metricAck])
	assert.Equal(t, int64(110), total.Count, "totals merge every window")
	assert.InDelta(t, 2000, total.Max, 2)
	assert.InDelta(t, 99, total.P90, 0.1, "the 99th of 110 values")
	assert.Len(t, c.series, 3)
	assert.Equal(t, map[string]uint64{"reject.busy": 1}, c.errors())
}

func TestMicrosClamps(t *testing.T) {
	assert.Equal(t, int64(histLowest), micros(0))
	assert.Equal(t, int64(histLowest), micros(-time.Second))
	assert.Equal(t, int64(1500), micros(1500*time.Microsecond))
	assert.Equal(t, int64(histHighest), micros(time.Hour))
}

// testReport runs the report assembly on a runner that never connected:
// recorded values, a violation and an error, no network.
func testReport(t *testing.T) *Report {
	t.Helper()
	cfg := Config{URLs: []string{"ws://127.0.0.1:1/ws"}, Bots: 4, Rate: 20, Secret: []byte("0123456789abcdef0123"), RunID: "t1", Seed: 7}
	cfg.setDefaults()
	require.NoError(t, cfg.validate())
	r := newRunner(&cfg)
	t0 := time.Unix(1_700_000_000, 0).UTC()
	r.col.begin(t0)
	st := r.shards[0]
	for i := 1; i <= 50; i++ {
		st.record(metricAck, time.Duration(i)*100*time.Microsecond)
		st.record(metricEvent, time.Duration(i)*120*time.Microsecond)
		st.add(cSent, 1)
		st.add(cAcked, 1)
		st.add(cEvents, 2)
	}
	st.countError("reject.busy")
	r.v.add(vGap, "bot b1: seq %d after %d", 5, 3)
	r.col.tick(t0.Add(time.Second), r.v.total(), false)
	atStop := r.col.counts()
	r.col.tick(t0.Add(2*time.Second), r.v.total(), true)
	return r.report(t0, t0.Add(time.Second), atStop, 4, false)
}

func TestReportJSONShape(t *testing.T) {
	rep := testReport(t)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteJSON(&buf))
	assert.NotContains(t, buf.String(), "0123456789abcdef", "the secret is never reported")

	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	for _, key := range []string{"acked_per_sec", "sent_per_sec", "events_delivered_per_sec", "load_cpu_cores", "violations", "elapsed_s", "bots_joined"} {
		assert.IsType(t, float64(0), m[key], key)
	}
	assert.Equal(t, 50.0, m["acked_per_sec"])
	assert.Equal(t, 100.0, m["events_delivered_per_sec"])
	assert.Equal(t, 1.0, m["violations"])
	for _, key := range []string{"ack_latency_ms", "event_latency_ms", "rtt_ms", "reconnect_ms"} {
		lat, ok := m[key].(map[string]any)
		require.True(t, ok, key)
		for _, q := range []string{"p50", "p90", "p99", "p999", "max", "mean", "count"} {
			assert.IsType(t, float64(0), lat[q], key+"."+q)
		}
	}
	ack := m["ack_latency_ms"].(map[string]any)
	assert.InDelta(t, 2.5, ack["p50"], 0.01)
	assert.InDelta(t, 5.0, ack["max"], 0.01)
	assert.Equal(t, map[string]any{"reject.busy": 1.0}, m["errors"])
	assert.Equal(t, []any{"gap: bot b1: seq 5 after 3"}, m["violation_samples"])
	assert.Equal(t, map[string]any{"gap": 1.0}, m["violations_by_kind"])

	params := m["params"].(map[string]any)
	assert.Equal(t, 4.0, params["bots"])
	assert.Equal(t, 2.0, params["rooms"])
	assert.Equal(t, 20.0, params["rate"])
	assert.Equal(t, "steady", params["scenario"])
	assert.Equal(t, true, params["signed_tokens"])
	assert.Equal(t, 7.0, params["seed"])
	assert.Equal(t, []any{"ws://127.0.0.1:1/ws"}, params["urls"])

	totals := m["totals"].(map[string]any)
	for _, key := range []string{"sent", "acked", "dup_acks", "rejected", "unacked", "events_delivered", "reconnects", "baron_kills", "unchecked_events", "unverified_acks"} {
		assert.IsType(t, float64(0), totals[key], key)
	}
	series := m["series"].([]any)
	require.Len(t, series, 2)
	p := series[0].(map[string]any)
	for _, key := range []string{"t", "acked_per_sec", "events_delivered_per_sec", "ack_ms", "event_ms", "violations"} {
		assert.Contains(t, p, key)
	}
}

func TestReportWithoutViolationsHasEmptyCollections(t *testing.T) {
	cfg := Config{URLs: []string{"ws://127.0.0.1:1/ws"}, Bots: 1}
	cfg.setDefaults()
	r := newRunner(&cfg)
	now := time.Now()
	r.col.begin(now)
	r.col.tick(now, 0, true)
	rep := r.report(now, now, r.col.counts(), 1, false)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteJSON(&buf))
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	assert.Equal(t, 0.0, m["violations"])
	assert.Equal(t, []any{}, m["violation_samples"])
	assert.Equal(t, map[string]any{}, m["errors"])
	assert.Equal(t, 0.0, m["acked_per_sec"], "no division by a zero elapsed time")

	var sum bytes.Buffer
	require.NoError(t, rep.WriteSummary(&sum))
	assert.Contains(t, sum.String(), "violations  0: every invariant held")
	assert.Contains(t, sum.String(), "errors      none")
}

func TestSummary(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, testReport(t).WriteSummary(&buf))
	s := buf.String()
	for _, want := range []string{
		"loadtest steady: 4 bots (4 joined) in 2 rooms, 20/s per bot",
		"latency ms", "p99.9", "ack", "event",
		"acked 50.0/s", "errors      reject.busy 1",
		"VIOLATIONS  1 (gap 1)", "gap: bot b1: seq 5 after 3",
	} {
		assert.Contains(t, s, want)
	}
	assert.Regexp(t, regexp.MustCompile(`(?m)^\s+ack\s+2\.\d+\s`), s, "ack row starts with p50 2.5ms")
}

func TestHTMLIsSelfContained(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, testReport(t).WriteHTML(&buf))
	page := buf.String()
	assert.True(t, strings.HasPrefix(page, "<!DOCTYPE html>"))
	assert.Equal(t, 3, strings.Count(page, "<svg"))
	assert.Contains(t, page, "<polyline")
	assert.Contains(t, page, "Ack latency")
	assert.Contains(t, page, "Throughput")
	assert.Contains(t, page, "background: #d95f02", "colors survive html/template's CSS filter")
	for _, banned := range []string{"http://", "https://", "<script", "<link", "ZgotmplZ", "src="} {
		assert.NotContains(t, page, banned)
	}
	assert.Regexp(t, `points="[0-9. ,]+"`, page)
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	rep := testReport(t)
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	require.NoError(t, rep.writeFiles(jsonPath, htmlPath))
	data, err := os.ReadFile(jsonPath)
	require.NoError(t, err)
	assert.True(t, json.Valid(data))
	data, err = os.ReadFile(htmlPath)
	require.NoError(t, err)
	assert.Contains(t, string(data), "<svg")
	assert.ErrorContains(t, rep.writeFiles(filepath.Join(dir, "missing", "r.json"), ""), "write report")
	require.NoError(t, rep.writeFiles("", ""))
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.1: 2, 3: 5, 7: 10, 42: 50, 150: 200} {
		assert.InDelta(t, want, niceCeil(in), 1e-9, "niceCeil(%v)", in)
	}
}
