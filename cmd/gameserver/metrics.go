package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
	"github.com/lasthit/lasthit/session"
)

// metrics serves the server's counters at GET /metrics in the Prometheus
// text format. Nothing is counted for it: every figure is read at scrape
// time from the counters the registry, the session server and the Redis
// log keep anyway, so the hot path pays nothing for monitoring.
type metrics struct {
	reg  *sequencer.Registry
	srv  *session.Server
	rlog *queue.RedisLog // nil with the in-memory log
}

func newMetricsHandler(reg *sequencer.Registry, srv *session.Server, roomLog queue.Log) http.Handler {
	m := &metrics{reg: reg, srv: srv}
	m.rlog, _ = roomLog.(*queue.RedisLog)
	pr := prometheus.NewRegistry()
	pr.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m,
	)
	return promhttp.HandlerFor(pr, promhttp.HandlerOpts{})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("lasthit_"+name, help, labels, nil)
}

var (
	mRooms        = desc("rooms", "Rooms whose loops run on this server.")
	mEntries      = desc("entries_total", "Entries made durable and published, server-made ones included.")
	mAcked        = desc("actions_acked_total", "Actions acked, resends answered with their original seq included.")
	mDups         = desc("actions_dup_total", "Acked resends of an already sequenced cseq.")
	mRejected     = desc("actions_rejected_by_room_total", "Queued actions a room refused without a seq (the log could not be written).")
	mRoomsFailed  = desc("rooms_failed_total", "Rooms that stopped on an error: lease lost, log unwritable, halted.")
	mConns        = desc("connections", "WebSocket connections being served, by state.", "state")
	mClosed       = desc("connections_closed_total", "Connections the server closed for a client's fault, by reason.", "reason")
	mRejects      = desc("rejects_total", "Reject frames sent to clients, by code.", "code")
	mLogAppends   = desc("log_appends_total", "Successful appends to the Redis log (one per room batch).")
	mLogEntries   = desc("log_entries_total", "Entries carried by successful Redis appends.")
	mLogRetries   = desc("log_retries_total", "Retried attempts of any Redis log call.")
	mLogRefused   = desc("log_appends_failed_total", "Redis appends that did not succeed, by reason.", "reason")
	mLogLatency   = desc("log_append_latency_seconds", "Latency of successful Redis appends over the last stats window, retries included.", "quantile")
	mLogMeanBatch = desc("log_append_batch_mean", "Mean entries per Redis append over the last stats window.")
)

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mRooms, mEntries, mAcked, mDups, mRejected, mRoomsFailed, mConns, mClosed, mRejects} {
		ch <- d
	}
	if m.rlog != nil {
		for _, d := range []*prometheus.Desc{mLogAppends, mLogEntries, mLogRetries, mLogRefused, mLogLatency, mLogMeanBatch} {
			ch <- d
		}
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	rs := m.reg.Stats()
	gauge(mRooms, float64(rs.Rooms))
	counter(mEntries, rs.Entries)
	counter(mAcked, rs.Acked)
	counter(mDups, rs.Dups)
	counter(mRejected, rs.Rejected)
	counter(mRoomsFailed, rs.Failed)

	ss := m.srv.Stats()
	gauge(mConns, float64(ss.Open), "open")
	gauge(mConns, float64(ss.Joined), "joined")
	counter(mClosed, ss.SlowConsumers, "slow_consumer")
	counter(mClosed, ss.WriteTimeouts, "write_timeout")
	counter(mClosed, ss.BadFrameCloses, "bad_frames")
	counter(mClosed, ss.TooBig, "too_big")
	counter(mClosed, ss.RefusedPerIP, "refused_per_ip")
	counter(mClosed, ss.JoinsLimited, "joins_limited")
	for code, n := range ss.Rejects {
		counter(mRejects, n, string(code))
	}

	if m.rlog == nil {
		return
	}
	ls := m.rlog.Stats()
	counter(mLogAppends, ls.TotalAppends)
	counter(mLogEntries, ls.TotalEntries)
	counter(mLogRetries, ls.TotalRetries)
	counter(mLogRefused, ls.TotalFenced, "fenced")
	counter(mLogRefused, ls.TotalConflicts, "conflict")
	counter(mLogRefused, ls.TotalFailed, "other")
	for _, q := range []struct {
		label string
		v     float64
	}{{"0.5", ls.P50.Seconds()}, {"0.9", ls.P90.Seconds()}, {"0.99", ls.P99.Seconds()}, {"0.999", ls.P999.Seconds()}, {"1", ls.Max.Seconds()}} {
		gauge(mLogLatency, q.v, q.label)
	}
	gauge(mLogMeanBatch, ls.MeanBatch)
}
