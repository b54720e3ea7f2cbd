package loadtest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Timing of the run's coordinator.
const (
	// tickEvery is the length of a series window and of the progress
	// line's period.
	tickEvery = time.Second
	// exitSlack is how long past Drain the coordinator waits for bots to
	// close before it cancels them.
	exitSlack = 2*closeWait + dialTimeout
)

// Run runs the load test cfg describes and returns its report. It returns
// an error, and no report, when cfg is invalid or no bot could join. When
// ctx ends during the run, bots stop at once and the report is marked
// interrupted. If cfg names report files, Run writes them; an error
// writing them comes with the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep, err := newRunner(&cfg).run(ctx)
	if err != nil {
		return nil, err
	}
	return rep, rep.writeFiles(cfg.JSONPath, cfg.HTMLPath)
}

// runner is a run's coordinator; its state is owned by the goroutine
// calling run.
type runner struct {
	cfg     *Config
	v       *violations
	rooms   []*room
	shards  []*shard
	bots    []*bot
	col     *collector
	start   chan struct{}
	stop    chan struct{}
	settled chan joinResult
}

func newRunner(cfg *Config) *runner {
	r := &runner{
		cfg:     cfg,
		v:       newViolations(),
		start:   make(chan struct{}),
		stop:    make(chan struct{}),
		settled: make(chan joinResult, 2*cfg.Bots), // a note and a final result each
	}
	for i := range cfg.Rooms {
		r.rooms = append(r.rooms, newRoom(newRoomCheck(cfg.roomName(i), cfg.CheckWindow, r.v)))
	}
	for range min(4*runtime.GOMAXPROCS(0), cfg.Bots) {
		r.shards = append(r.shards, newShard())
	}
	r.col = newCollector(r.shards)
	now := time.Now()
	sh := &shared{
		cfg:   cfg,
		epoch: now,
		seed:  maphash.MakeSeed(),
		dialer: &websocket.Dialer{
			HandshakeTimeout: min(dialTimeout, cfg.ReadTimeout),
			ReadBufferSize:   4096,
			WriteBufferSize:  1024,
			// No Proxy: bots talk to the URLs they are given.
		},
		tokenExp: now.Add(cfg.ConnectTimeout + cfg.Duration + cfg.Drain + time.Hour),
		v:        r.v,
		start:    r.start,
		stop:     r.stop,
		settled:  r.settled,
	}
	for i := range cfg.Bots {
		r.bots = append(r.bots, newBot(i, sh, r.rooms[i%cfg.Rooms], r.shards[i%len(r.shards)]))
	}
	return r
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	botCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, b := range r.bots {
		wg.Go(func() { b.loop(botCtx) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()

	joined, err := r.awaitJoins(ctx)
	if joined == 0 {
		cancel()
		<-done
		return nil, err
	}
	cpuAtStart, cpuOK := processCPU()
	startedAt := time.Now()
	r.col.begin(startedAt)
	close(r.start)

	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	end := time.NewTimer(cfg.Duration)
	defer end.Stop()
	interrupted := false
acting:
	for {
		select {
		case now := <-ticker.C:
			r.progress(r.col.tick(now, r.v.total(), false))
		case <-end.C:
			break acting
		case <-ctx.Done():
			interrupted = true
			break acting
		}
	}
	stoppedAt := time.Now()
	atStop := r.col.counts()
	cpuAtStop, cpuStopOK := processCPU()
	close(r.stop)
	if interrupted {
		cancel()
	}

	hard := time.NewTimer(cfg.Drain + exitSlack)
	defer hard.Stop()
draining:
	for {
		select {
		case <-done:
			break draining
		case now := <-ticker.C:
			r.progress(r.col.tick(now, r.v.total(), true))
		case <-hard.C:
			cancel()
		case <-ctx.Done():
			interrupted = true
			cancel()
		}
	}
	r.col.tick(time.Now(), r.v.total(), true)
	if cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress)
	}
	rep := r.report(startedAt, stoppedAt, atStop, joined, interrupted)
	if cpuOK && cpuStopOK && rep.ElapsedS > 0 {
		rep.LoadCPUCores = (cpuAtStop - cpuAtStart).Seconds() / rep.ElapsedS
	}
	return rep, nil
}

// awaitJoins waits until every bot has joined or said why it cannot, or
// ConnectTimeout. It returns how many joined and, if none did, why.
func (r *runner) awaitJoins(ctx context.Context) (int, error) {
	timeout := time.NewTimer(r.cfg.ConnectTimeout)
	defer timeout.Stop()
	joined := 0
	var errs []error
	for n := 0; n < len(r.bots); {
		select {
		case res := <-r.settled:
			if !res.note {
				n++ // a note is not final: the bot keeps trying
			}
			if res.err == nil {
				joined++
			} else if len(errs) < 3 {
				errs = append(errs, res.err)
			}
		case <-timeout.C:
			if joined == 0 {
				errs = append(errs, fmt.Errorf("no bot joined within %v", r.cfg.ConnectTimeout))
			}
			return joined, r.startError(errs)
		case <-ctx.Done():
			return 0, fmt.Errorf("loadtest: interrupted before the start: %w", ctx.Err())
		}
	}
	return joined, r.startError(errs)
}

func (r *runner) startError(errs []error) error {
	if len(errs) == 0 {
		return errors.New("loadtest: no bot could join")
	}
	return fmt.Errorf("loadtest: no bot could join: %w", errors.Join(errs...))
}

// progress rewrites the status line.
func (r *runner) progress(p Point) {
	w := r.cfg.Progress
	if w == nil {
		return
	}
	errs := r.col.last[cErrors]
	state := "acting"
	if p.Draining {
		state = "draining"
	}
	fmt.Fprintf(w, "\r%6.1fs %-8s  acked %8.0f/s  events %9.0f/s  ack p99 %7.2fms  errors %d  violations %d\x1b[K",
		p.T, state, p.AckedPerSec, p.EventsPerSec, p.AckMS.P99, errs, p.Violations)
}
