package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured and found. Rates are over the acting
// window (Duration, or less if interrupted); totals cover the whole run,
// joining and draining included.
type Report struct {
	Params      Params    `json:"params"`
	StartedAt   time.Time `json:"started_at"`
	ElapsedS    float64   `json:"elapsed_s"` // the acting window
	Interrupted bool      `json:"interrupted"`
	BotsJoined  int       `json:"bots_joined"` // by the start

	AckedPerSec           float64 `json:"acked_per_sec"`
	SentPerSec            float64 `json:"sent_per_sec"`
	EventsDeliveredPerSec float64 `json:"events_delivered_per_sec"`
	// LoadCPUCores is the CPU the load test itself used over the acting
	// window, in cores (CPU seconds per second): what the bots took from
	// a machine they share with the server. 0 where not measured.
	LoadCPUCores float64 `json:"load_cpu_cores"`

	AckLatencyMS   Latency `json:"ack_latency_ms"`   // action sent → ack
	EventLatencyMS Latency `json:"event_latency_ms"` // action sent → its own event
	RTTMS          Latency `json:"rtt_ms"`           // ping → pong
	ReconnectMS    Latency `json:"reconnect_ms"`     // connection lost → welcome again

	Totals Totals `json:"totals"`

	Violations       uint64            `json:"violations"` // 0: every invariant held
	ViolationsByKind map[string]uint64 `json:"violations_by_kind"`
	ViolationSamples []string          `json:"violation_samples"`
	Errors           map[string]uint64 `json:"errors"` // code → count

	Series []Point `json:"series"` // one point per second
}

// Params are the run's parameters, defaults filled in. The secret is not
// reported, only whether tokens were signed.
type Params struct {
	URLs         []string `json:"urls"`
	Bots         int      `json:"bots"`
	Rooms        int      `json:"rooms"`
	Rate         float64  `json:"rate"` // per bot; 0: as fast as acks allow
	Window       int      `json:"window"`
	DurationS    float64  `json:"duration_s"`
	DrainS       float64  `json:"drain_s"`
	Scenario     Scenario `json:"scenario"`
	SignedTokens bool     `json:"signed_tokens"`
	RunID        string   `json:"run_id"`
	Seed         uint64   `json:"seed"`
	PingEveryS   float64  `json:"ping_every_s"`
	ReadTimeoutS float64  `json:"read_timeout_s"`
	BackoffMaxS  float64  `json:"backoff_max_s"`
	DropEveryS   float64  `json:"drop_every_s"`
	LowHP        int64    `json:"low_hp"`
	HoldBackMS   float64  `json:"hold_back_ms"`
	Burst        int      `json:"burst"`
	CheckWindow  int      `json:"check_window"`
}

// Totals count the whole run.
type Totals struct {
	Sent            uint64 `json:"sent"`
	Resent          uint64 `json:"resent"`
	Acked           uint64 `json:"acked"`
	DupAcks         uint64 `json:"dup_acks"`
	Rejected        uint64 `json:"rejected"`
	Unacked         uint64 `json:"unacked"` // no answer by the end
	EventsDelivered uint64 `json:"events_delivered"`
	Reconnects      uint64 `json:"reconnects"`
	Errors          uint64 `json:"errors"`
	BaronKills      uint64 `json:"baron_kills"`
	// UncheckedEvents were too far behind the room's other bots to be
	// compared with theirs (see Config.CheckWindow).
	UncheckedEvents uint64 `json:"unchecked_events"`
	// UnverifiedAcks name an event no bot of the room still remembered.
	UnverifiedAcks uint64 `json:"unverified_acks"`
}

func (r *runner) report(startedAt, stoppedAt time.Time, atStop [numCounters]uint64, joined int, interrupted bool) *Report {
	cfg, col := r.cfg, r.col
	n := col.counts()
	elapsed := stoppedAt.Sub(startedAt).Seconds()
	rate := func(k counter) float64 {
		if elapsed <= 0 {
			return 0
		}
		return float64(atStop[k]-col.first[k]) / elapsed
	}
	count, kinds, samples := r.v.snapshot()
	rep := &Report{
		Params: Params{
			URLs:         cfg.URLs,
			Bots:         cfg.Bots,
			Rooms:        cfg.Rooms,
			Rate:         cfg.Rate,
			Window:       cfg.Window,
			DurationS:    cfg.Duration.Seconds(),
			DrainS:       cfg.Drain.Seconds(),
			Scenario:     cfg.Scenario,
			SignedTokens: len(cfg.Secret) > 0,
			RunID:        cfg.RunID,
			Seed:         cfg.Seed,
			PingEveryS:   cfg.PingEvery.Seconds(),
			ReadTimeoutS: cfg.ReadTimeout.Seconds(),
			BackoffMaxS:  cfg.BackoffMax.Seconds(),
			DropEveryS:   cfg.DropEvery.Seconds(),
			LowHP:        cfg.LowHP,
			HoldBackMS:   float64(cfg.HoldBack) / float64(time.Millisecond),
			Burst:        cfg.Burst,
			CheckWindow:  cfg.CheckWindow,
		},
		StartedAt:             startedAt,
		ElapsedS:              elapsed,
		Interrupted:           interrupted,
		BotsJoined:            joined,
		AckedPerSec:           rate(cAcked),
		SentPerSec:            rate(cSent),
		EventsDeliveredPerSec: rate(cEvents),
		AckLatencyMS:          summarize(col.total[metricAck]),
		EventLatencyMS:        summarize(col.total[metricEvent]),
		RTTMS:                 summarize(col.total[metricRTT]),
		ReconnectMS:           summarize(col.total[metricReconnect]),
		Totals: Totals{
			Sent:            n[cSent],
			Resent:          n[cResent],
			Acked:           n[cAcked],
			DupAcks:         n[cDupAcks],
			Rejected:        n[cRejected],
			Unacked:         n[cUnacked],
			EventsDelivered: n[cEvents],
			Reconnects:      n[cReconnects],
			Errors:          n[cErrors],
			UnverifiedAcks:  n[cUnverified],
		},
		Violations:       count,
		ViolationsByKind: kinds,
		ViolationSamples: samples,
		Errors:           col.errors(),
		Series:           col.series,
	}
	for _, rm := range r.rooms {
		kills, unchecked := rm.check.stats()
		rep.Totals.BaronKills += kills
		rep.Totals.UncheckedEvents += unchecked
	}
	return rep
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func (rep *Report) writeFiles(jsonPath, htmlPath string) error {
	write := func(path string, render func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		var buf bytes.Buffer
		if err := render(&buf); err != nil {
			return fmt.Errorf("loadtest: render %s: %w", path, err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("loadtest: write report: %w", err)
		}
		return nil
	}
	if err := write(jsonPath, rep.WriteJSON); err != nil {
		return err
	}
	return write(htmlPath, rep.WriteHTML)
}

// WriteSummary writes the human-readable summary: parameters, latency
// table, throughput, totals, errors and violations.
func (rep *Report) WriteSummary(w io.Writer) error {
	p := &rep.Params
	var b strings.Builder
	rate := "as fast as acks allow"
	if p.Rate > 0 {
		rate = fmt.Sprintf("%g/s per bot", p.Rate)
	}
	fmt.Fprintf(&b, "loadtest %s: %d bots (%d joined) in %d rooms, %s, window %d, %.1fs, run %s, seed %d\n",
		p.Scenario, p.Bots, rep.BotsJoined, p.Rooms, rate, p.Window, rep.ElapsedS, p.RunID, p.Seed)
	if rep.Interrupted {
		b.WriteString("interrupted: the figures cover the run up to the interruption\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency ms\tp50\tp90\tp99\tp99.9\tmax\tcount\t")
	for _, row := range []struct {
		name string
		l    Latency
	}{
		{"ack", rep.AckLatencyMS}, {"event", rep.EventLatencyMS}, {"rtt", rep.RTTMS}, {"reconnect", rep.ReconnectMS},
	} {
		l := row.l
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t\n", row.name, l.P50, l.P90, l.P99, l.P999, l.Max, l.Count)
	}
	tw.Flush()
	t := &rep.Totals
	fmt.Fprintf(&b, "\nthroughput  acked %.1f/s  sent %.1f/s  events delivered %.1f/s  (load test CPU %.2f cores)\n",
		rep.AckedPerSec, rep.SentPerSec, rep.EventsDeliveredPerSec, rep.LoadCPUCores)
	fmt.Fprintf(&b, "totals      sent %d  resent %d  acked %d (dup %d)  rejected %d  unacked %d  events %d  reconnects %d  baron kills %d\n",
		t.Sent, t.Resent, t.Acked, t.DupAcks, t.Rejected, t.Unacked, t.EventsDelivered, t.Reconnects, t.BaronKills)
	if t.UncheckedEvents > 0 || t.UnverifiedAcks > 0 {
		fmt.Fprintf(&b, "unchecked   %d events too far behind to compare, %d acks whose event was no longer kept\n",
			t.UncheckedEvents, t.UnverifiedAcks)
	}
	if len(rep.Errors) == 0 {
		b.WriteString("errors      none\n")
	} else {
		parts := make([]string, 0, len(rep.Errors))
		for _, k := range sortedKeys(rep.Errors) {
			parts = append(parts, fmt.Sprintf("%s %d", k, rep.Errors[k]))
		}
		fmt.Fprintf(&b, "errors      %s\n", strings.Join(parts, ", "))
	}
	if rep.Violations == 0 {
		b.WriteString("violations  0: every invariant held\n")
	} else {
		parts := make([]string, 0, len(rep.ViolationsByKind))
		for _, k := range sortedKeys(rep.ViolationsByKind) {
			parts = append(parts, fmt.Sprintf("%s %d", k, rep.ViolationsByKind[k]))
		}
		fmt.Fprintf(&b, "VIOLATIONS  %d (%s)\n", rep.Violations, strings.Join(parts, ", "))
		for _, s := range rep.ViolationSamples {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
