package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"

	"github.com/lasthit/lasthit/internal/redistest"
)

// BenchmarkRedisAppend measures durable appends per second (ns/op is per
// entry) with 1 to 1,000 active rooms on one redis-server with AOF
// everysec, started by the harness on this machine.
//
// Load model: every room has benchPlayers bots, and each bot sends its next
// action as soon as its last one is acked, the worst case the session rate
// limits allow. A room loop drains what has queued (at most benchMaxBatch,
// the sequencer's default), appends it in one call, then acks it, which
// lets those bots send again; so the batch size is what arrives during one
// append, as in the real room loop. Reported: entries/s, the observed mean
// batch, and p50/p99 of the append call. At saturation the latency is
// mostly waiting behind the other rooms' appends (Little's law: entries in
// flight / entries/s).
//
// Implementations, in the same run on the same Redis under the same load:
//
//	log            RedisLog with its defaults: up to DirectAppends (16)
//	               appends on connections of their own, more autopipelined
//	log-direct     every append on a connection of its own (DirectAppends
//	               = rooms)
//	log-pipelined  every append autopipelined (DirectAppends = 1)
//	raw-lua        a bare Lua XADD loop per batch, no checks, no meta, sent
//	               the way log sends: the ceiling of one script per batch
//	raw-xadd       each batch as a pipeline of bare XADDs on the pool
//
// The last case, 1,000 rooms of 10 bots, is the one where many small
// batches from many rooms meet. log-direct against log-pipelined is the
// measurement behind DirectAppends.
func BenchmarkRedisAppend(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{AppendOnly: true, AppendFsync: "everysec"})
	for _, sc := range []struct{ rooms, players int }{{1, 100}, {10, 100}, {100, 100}, {1000, 100}, {1000, 10}} {
		for _, impl := range []string{"log", "log-direct", "log-pipelined", "raw-lua", "raw-xadd"} {
			b.Run(fmt.Sprintf("rooms=%d/players=%d/%s", sc.rooms, sc.players, impl), func(b *testing.B) {
				benchAppend(b, srv, sc.rooms, sc.players, impl)
			})
		}
	}
}

const (
	benchMaxBatch = 1024 // sequencer MaxBatch default
	benchEventLen = 150
)

// appendFunc appends recs of room in one call.
type appendFunc func(ctx context.Context, room string, epoch uint64, recs []Record) error

func benchAppend(b *testing.B, srv *redistest.Server, rooms, players int, impl string) {
	ctx := context.Background()
	prefix := b.Name()
	opts := RedisOptions{URL: srv.URL(), Prefix: prefix}
	switch impl {
	case "log-direct":
		// A connection per active room, so none waits for one.
		opts.DirectAppends = rooms
	case "log-pipelined":
		opts.DirectAppends = 1
	}
	l, err := NewRedisLog(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	// raw-xadd uses a client configured like the log's pool.
	ro, err := l.opts.redisClientOptions()
	if err != nil {
		b.Fatal(err)
	}
	ro.PoolSize = rooms + 8
	raw := redis.NewClient(ro)
	defer raw.Close()
	bare := newScript("bench_bare_xadd", `for i = 1, #ARGV, 3 do redis.call('XADD', KEYS[1], ARGV[i], 'ev', ARGV[i+1], 'st', ARGV[i+2]) end return {'ok'}`)

	var do appendFunc
	switch impl {
	case "log", "log-direct", "log-pipelined":
		do = func(ctx context.Context, room string, epoch uint64, recs []Record) error {
			return l.Append(ctx, room, Batch{Epoch: epoch, Records: recs, Hash: recs[len(recs)-1].Seq})
		}
	case "raw-xadd":
		do = func(ctx context.Context, room string, _ uint64, recs []Record) error {
			key := prefix + ":{" + room + "}:log"
			_, err := raw.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := range recs {
					r := &recs[i]
					p.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: streamID(r.Seq), Values: []any{"ev", r.Event, "st", appendStamp(nil, r.Stamp, r.At)}})
				}
				return nil
			})
			return err
		}
	case "raw-lua":
		do = func(ctx context.Context, room string, _ uint64, recs []Record) error {
			key := prefix + ":{" + room + "}:log"
			args := make([]any, 0, 3*len(recs))
			for i := range recs {
				r := &recs[i]
				args = append(args, streamID(r.Seq), r.Event, appendStamp(nil, r.Stamp, r.At))
			}
			_, err := bare.run(ctx, l.appender(), []string{key}, args)
			l.direct.Add(-1)
			return err
		}
	default:
		b.Fatalf("unknown implementation %q", impl)
	}

	sims := make([]*simRoom, rooms)
	for i := range sims {
		name := fmt.Sprintf("room%04d", i)
		epoch, err := l.Acquire(ctx, name, Lease{})
		if err != nil {
			b.Fatal(err)
		}
		sims[i] = newSimRoom(name, epoch, players)
	}
	var (
		left    atomic.Int64 // entries still to append
		stamps  atomic.Uint64
		batches atomic.Int64
		histMu  sync.Mutex
		hist    = hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
		wg      sync.WaitGroup
		failed  atomic.Pointer[error]
	)
	left.Store(int64(b.N))
	event := []byte(strings.Repeat("e", benchEventLen))
	redisCPU0, err := redisCPU(ctx, raw)
	if err != nil {
		b.Fatal(err)
	}
	clientCPU0 := processCPU()
	b.ResetTimer()
	start := time.Now()
	for _, s := range sims {
		wg.Add(2)
		go func() { defer wg.Done(); s.bots() }()
		go func() {
			defer wg.Done()
			defer s.stop()
			var recs []Record
			for {
				n := s.drain(benchMaxBatch)
				if rest := left.Add(-int64(n)); rest < 0 {
					n += int(rest)
					if n <= 0 {
						return
					}
				}
				recs = recs[:0]
				for range n {
					s.seq++
					recs = append(recs, Record{Seq: s.seq, Stamp: stamps.Add(1), At: time.Now().UnixNano(), Event: event})
				}
				t0 := time.Now()
				if err := do(ctx, s.name, s.epoch, recs); err != nil {
					failed.Store(&err)
					left.Store(0)
					return
				}
				took := max(time.Since(t0).Microseconds(), 1)
				histMu.Lock()
				_ = hist.RecordValue(took)
				histMu.Unlock()
				batches.Add(1)
				s.ack(n)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	clientCPU := processCPU() - clientCPU0
	redisCPU1, err := redisCPU(ctx, raw)
	if err != nil {
		b.Fatal(err)
	}
	// Where the two cores went: Redis's one thread, and this process
	// (bots, room loops, go-redis).
	b.ReportMetric(float64(redisCPU1-redisCPU0)/float64(b.N), "redis-cpu-ns/entry")
	b.ReportMetric(float64(clientCPU)/float64(b.N), "client-cpu-ns/entry")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(b.N)/float64(max(batches.Load(), 1)), "batch")
	b.ReportMetric(float64(hist.ValueAtQuantile(50)), "p50-µs")
	b.ReportMetric(float64(hist.ValueAtQuantile(99)), "p99-µs")
	// Free the server's memory for the next run.
	if err := raw.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
}

// simRoom is one room under load: players bots, each with one action
// in flight, feeding a queue its loop drains.
type simRoom struct {
	name  string
	epoch uint64
	seq   uint64 // owned by the loop

	mu      sync.Mutex
	queued  int
	notify  chan struct{} // one slot: "something is queued"
	credits chan int      // acked actions: their bots may send again
	done    chan struct{}
}

func newSimRoom(name string, epoch uint64, players int) *simRoom {
	s := &simRoom{name: name, epoch: epoch, notify: make(chan struct{}, 1), credits: make(chan int, 1), done: make(chan struct{})}
	s.credits <- players
	return s
}

// bots sends one action per credit, each under the queue lock like a
// session's Push.
func (s *simRoom) bots() {
	for {
		select {
		case k := <-s.credits:
			for range k {
				s.mu.Lock()
				s.queued++
				s.mu.Unlock()
				select {
				case s.notify <- struct{}{}:
				default:
				}
			}
		case <-s.done:
			return
		}
	}
}

// drain waits for queued actions and takes up to limit of them.
func (s *simRoom) drain(limit int) int {
	for {
		s.mu.Lock()
		n := min(s.queued, limit)
		s.queued -= n
		s.mu.Unlock()
		if n > 0 {
			return n
		}
		<-s.notify
	}
}

func (s *simRoom) ack(n int) { s.credits <- n }

func (s *simRoom) stop() { close(s.done) }

// redisCPU is the CPU time redis-server has used (INFO cpu), user + system.
func redisCPU(ctx context.Context, c *redis.Client) (time.Duration, error) {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}

// processCPU is the CPU time this process has used, user + system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
