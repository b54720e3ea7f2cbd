// Command floor measures the transport floor of the duel shape on this
// machine: the same frames over the same WebSocket library as `gameserver
// loadtest` against `gameserver serve`, with nothing else. The relay
// answers each client frame with an ack to its sender and an event to both
// players of the pair, each connection's frames leaving in one write per
// wake-up; it sequences nothing, keeps no log and checks nothing. The load
// sends open loop at a fixed rate per connection and reports the ack
// latency (HdrHistogram) and the CPU each side took.
//
//	go run ./scripts/floor relay --addr 127.0.0.1:7900 --group 2 &
//	go run ./scripts/floor load --url ws://127.0.0.1:7900/ws --conns 200 --rate 300 --duration 10s
//
// scripts/bench-floor.sh runs both and measures the relay's CPU.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: floor relay|load [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "relay":
		relay(os.Args[2:])
	case "load":
		load(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: floor relay|load [flags]")
		os.Exit(2)
	}
}

// outbox is one connection's frames waiting for its write pump.
type outbox struct {
	mu     sync.Mutex
	frames []byte // whole WebSocket frames, back to back
	notify chan struct{}
}

func (o *outbox) put(payload []byte) {
	o.mu.Lock()
	o.frames = appendFrame(o.frames, payload)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// appendFrame appends an unmasked server text frame.
func appendFrame(b, p []byte) []byte {
	b = append(b, 0x81)
	switch n := len(p); {
	case n < 126:
		b = append(b, byte(n))
	default:
		b = append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, p...)
}

// group is one room: its members, in the order they connected.
type group struct {
	mu      sync.Mutex
	members []*member
}

type member struct {
	ws   *websocket.Conn
	out  *outbox
	done chan struct{} // closed when the read pump ends
}

func relay(args []string) {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7900", "listen address")
	size := fs.Int("group", 2, "connections per room, in the order they connect")
	_ = fs.Parse(args)
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	var mu sync.Mutex
	var open *group
	var seq atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		me := &member{ws: ws, out: &outbox{notify: make(chan struct{}, 1)}, done: make(chan struct{})}
		mu.Lock()
		if open == nil {
			open = &group{}
		}
		g := open
		g.mu.Lock()
		g.members = append(g.members, me)
		if len(g.members) == *size {
			open = nil
		}
		g.mu.Unlock()
		mu.Unlock()
		go writePump(me)
		readPump(me, g, &seq)
		close(me.done)
		ws.Close()
	})
	fmt.Fprintln(os.Stderr, http.ListenAndServe(*addr, mux))
}

func readPump(me *member, g *group, seq *atomic.Int64) {
	var ack, ev []byte
	for {
		_, p, err := me.ws.ReadMessage()
		if err != nil {
			return
		}
		s := seq.Add(1)
		// p is an action frame whose cseq is its send time: the ack
		// echoes it, as the game server's acks echo the bots' cseq.
		ack = append(append(append(ack[:0], `{"type":"ack","cseq":`...), cseqOf(p)...), `,"seq":`...)
		ack = append(strconv.AppendInt(ack, s, 10), '}')
		ev = append(ev[:0], `{"type":"event","seq":`...)
		ev = strconv.AppendInt(ev, s, 10)
		ev = append(ev, `,"at":1234567890123,"player":"p1","cseq":12,"kind":"attack","target":"baron","result":{"damage":420,"baron_hp":9000,"last_hit":false}}`...)
		me.out.put(ack)
		g.mu.Lock()
		for _, m := range g.members {
			m.out.put(ev)
		}
		g.mu.Unlock()
	}
}

// cseqOf returns the digits after "cseq": in an action frame.
func cseqOf(p []byte) []byte {
	i := bytes.Index(p, []byte(`"cseq":`))
	if i < 0 {
		return []byte("0")
	}
	i += len(`"cseq":`)
	j := i
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		j++
	}
	return p[i:j]
}

// writePump sends everything queued at each wake-up in one write.
func writePump(me *member) {
	conn := me.ws.NetConn()
	var buf []byte
	for {
		select {
		case <-me.done:
			return
		case <-me.out.notify:
		}
		me.out.mu.Lock()
		buf, me.out.frames = me.out.frames, buf[:0]
		me.out.mu.Unlock()
		if _, err := conn.Write(buf); err != nil {
			return
		}
	}
}

// drain is how long the load waits for answers after it stops sending.
const drain = 200 * time.Millisecond

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "ws://127.0.0.1:7900/ws", "relay URL")
	conns := fs.Int("conns", 200, "connections (pairs of two)")
	rate := fs.Float64("rate", 300, "frames/s per connection")
	duration := fs.Duration("duration", 10*time.Second, "sending time")
	_ = fs.Parse(args)
	epoch := time.Now()
	var mu sync.Mutex
	hist := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	var acked, delivered atomic.Int64
	var readers, senders sync.WaitGroup
	wss := make([]*websocket.Conn, *conns)
	for i := range wss {
		ws, _, err := websocket.DefaultDialer.Dial(*url, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		wss[i] = ws
	}
	cpu0 := cpuNow()
	start := time.Now()
	end := start.Add(*duration)
	interval := time.Duration(float64(time.Second) / *rate)
	for i, ws := range wss {
		readers.Add(1)
		senders.Add(1)
		go func() { // read pump
			defer readers.Done()
			local := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			for {
				_, p, err := ws.ReadMessage()
				if err != nil {
					break
				}
				if len(p) > 20 && string(p[:20]) == `{"type":"ack","cseq"` {
					// {"type":"ack","cseq":N,"seq":S}
					j := 21
					k := j
					for p[k] >= '0' && p[k] <= '9' {
						k++
					}
					sent, _ := strconv.ParseInt(string(p[j:k]), 10, 64)
					lat := time.Since(epoch) - time.Duration(sent)
					_ = local.RecordValue(int64(lat / time.Microsecond))
					acked.Add(1)
				} else {
					delivered.Add(1)
				}
			}
			mu.Lock()
			hist.Merge(local)
			mu.Unlock()
		}()
		go func() { // sender, open loop
			defer senders.Done()
			next := start.Add(time.Duration(i) * interval / time.Duration(len(wss)))
			var b []byte
			for {
				now := time.Now()
				if now.After(end) {
					return
				}
				if d := next.Sub(now); d > 0 {
					time.Sleep(d)
				}
				b = append(b[:0], `{"type":"action","cseq":`...)
				b = strconv.AppendInt(b, int64(time.Since(epoch)), 10)
				b = append(b, `,"kind":"attack","target":"baron"}`...)
				if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
					return
				}
				next = next.Add(interval)
			}
		}()
	}
	senders.Wait()
	elapsed := time.Since(start)
	cpu := cpuNow() - cpu0
	time.Sleep(drain) // answers still on their way
	for _, ws := range wss {
		ws.Close()
	}
	readers.Wait()
	ms := func(q float64) float64 { return float64(hist.ValueAtQuantile(q)) / 1000 }
	fmt.Printf("conns=%d rate=%g acked/s=%.0f delivered/s=%.0f ack_ms p50=%.3f p99=%.3f max=%.3f cpu_load=%.2f\n",
		*conns, *rate, float64(acked.Load())/duration.Seconds(), float64(delivered.Load())/duration.Seconds(), ms(50), ms(99), float64(hist.Max())/1000, cpu.Seconds()/elapsed.Seconds())
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
