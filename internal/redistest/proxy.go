package redistest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards loopback TCP connections to a Redis and can lose its
// replies: when Drop says so, a chunk of replies is swallowed and both
// connections are closed. The commands those replies answer have run, so
// the client sees exactly what a network failure after the write looks
// like: an error, and an outcome it cannot know.
type Proxy struct {
	ln      net.Listener
	target  string
	drop    func(reply []byte) bool
	dropped atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards to target.
// drop is called, from the connections' goroutines, with every chunk Redis
// sends back; it must be safe for concurrent use. A nil drop forwards
// everything. The proxy is closed when the test ends.
func StartProxy(t testing.TB, target string, drop func(reply []byte) bool) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	if drop == nil {
		drop = func([]byte) bool { return false }
	}
	p := &Proxy{ln: ln, target: target, drop: drop, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Dropped is how many reply chunks were swallowed.
func (p *Proxy) Dropped() int64 { return p.dropped.Load() }

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers conns; false once the proxy is closed.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, u) {
			c.Close()
			u.Close()
			return
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(u, c)
			p.untrack(c, u)
		}()
		go func() {
			defer p.wg.Done()
			p.replies(c, u)
			p.untrack(c, u)
		}()
	}
}

func (p *Proxy) replies(c, u net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			if p.drop(buf[:n]) {
				p.dropped.Add(1)
				return
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
