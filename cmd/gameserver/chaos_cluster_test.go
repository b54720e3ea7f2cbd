//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lasthit/lasthit/internal/redistest"
	"github.com/lasthit/lasthit/internal/testutil"
)

// The chaos test's servers: real `gameserver serve` processes, so a kill -9
// loses exactly what a crash loses. The test goroutine owns a chaosCluster;
// each process's reaper goroutine owns only its chaosProc's exit fields,
// published by closing exited.

// buildChaosBinary builds this package's binary once, without -race (the
// servers are the subject, not the instrument; race-built they would be
// several times slower), into a temporary directory.
func buildChaosBinary(t *testing.T) string {
	t.Helper()
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gameserver")
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the gameserver binary: %v\n%s", err, out)
	}
	return bin
}

// chaosProc is one server process: one node id, one log file.
type chaosProc struct {
	id      string
	url     string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed by the reaper once Wait returned
	waitErr error         // set before exited is closed
}

func (p *chaosProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process, unless it has exited.
func (p *chaosProc) signal(sig syscall.Signal) error {
	if !p.alive() {
		return fmt.Errorf("node %s has exited: %v", p.id, p.waitErr)
	}
	return p.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits (bounded) for the process to be reaped.
func (p *chaosProc) kill() error {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("node %s not reaped 10s after SIGKILL", p.id)
	}
}

// logSize is how many bytes the process has logged so far.
func (p *chaosProc) logSize() int64 {
	fi, err := os.Stat(p.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logFrom returns the process's log from byte offset on.
func (p *chaosProc) logFrom(offset int64) []byte {
	data, err := os.ReadFile(p.logPath)
	if err != nil || offset > int64(len(data)) {
		return nil
	}
	return data[offset:]
}

// tail returns the last n lines of the process's log, each cut to a
// readable length.
func (p *chaosProc) tail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "…"
		}
	}
	return strings.Join(lines, "\n")
}

// chaosSlot is one of the three server places: its port survives its
// processes, so clients find a fresh server where a dead one was.
type chaosSlot struct {
	name string     // n1, n2, n3
	addr string     // 127.0.0.1:port
	url  string     // ws://addr/ws, also the advertised URL
	gen  int        // processes started here so far
	proc *chaosProc // the current process
}

// chaosCluster runs the servers of one chaos test.
type chaosCluster struct {
	t     *testing.T
	bin   string
	redis string
	ttl   time.Duration
	dir   string
	slots []*chaosSlot
	procs []*chaosProc // every process ever started, for the failure report
	http  *http.Client
}

func newChaosCluster(t *testing.T, bin, redisURL string, ttl time.Duration, n int) *chaosCluster {
	t.Helper()
	c := &chaosCluster{t: t, bin: bin, redis: redisURL, ttl: ttl, dir: t.TempDir(), http: &http.Client{Timeout: 2 * time.Second}}
	t.Cleanup(c.cleanup)
	for _, port := range chaosFreePorts(t, n) {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		s := &chaosSlot{name: fmt.Sprintf("n%d", len(c.slots)+1), addr: addr, url: "ws://" + addr + "/ws"}
		c.slots = append(c.slots, s)
	}
	for _, s := range c.slots {
		c.start(s)
	}
	return c
}

// chaosFreePorts returns n distinct loopback ports that were free a moment
// ago.
func chaosFreePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func (c *chaosCluster) urls() []string {
	out := make([]string, len(c.slots))
	for i, s := range c.slots {
		out[i] = s.url
	}
	return out
}

// start runs a fresh process in s under a new node id and waits until it
// is ready.
func (c *chaosCluster) start(s *chaosSlot) *chaosProc {
	t := c.t
	t.Helper()
	s.gen++
	p := &chaosProc{id: fmt.Sprintf("%s-%d", s.name, s.gen), url: s.url, exited: make(chan struct{})}
	p.logPath = filepath.Join(c.dir, p.id+".log")
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(c.bin, "serve",
		"--addr", s.addr,
		"--redis", c.redis,
		"--node-id", p.id,
		"--advertise", s.url,
		"--lease-ttl", c.ttl.String(),
		"--rate-limit", "0",
		"--max-conns-per-ip", "10000",
		"--log-format", "json",
	)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = chaosServerEnv()
	redistest.KillWithParent(p.cmd)
	err = p.cmd.Start()
	f.Close() // the child has its own descriptor
	if err != nil {
		t.Fatalf("start node %s: %v", p.id, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	s.proc = p
	c.procs = append(c.procs, p)
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !p.alive() {
			return fmt.Errorf("node %s exited before it was ready: %v\n%s", p.id, p.waitErr, p.tail(20))
		}
		resp, err := c.http.Get("http://" + s.addr + "/readyz")
		if err != nil {
			return fmt.Errorf("node %s: /readyz: %w", p.id, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("node %s: /readyz answers %d", p.id, resp.StatusCode)
		}
		return nil
	})
	return p
}

// chaosServerEnv is the test's environment without GAMESERVER_ variables,
// so the servers run with exactly the flags the test gives them.
func chaosServerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return env
}

// killAll SIGKILLs every process still running.
func (c *chaosCluster) killAll() {
	for _, p := range c.procs {
		if err := p.kill(); err != nil {
			c.t.Error(err)
		}
	}
}

// cleanup kills every process, and on failure prints each one's exit and
// the tail of its log.
func (c *chaosCluster) cleanup() {
	c.killAll()
	if !c.t.Failed() {
		return
	}
	var b bytes.Buffer
	for _, p := range c.procs {
		state := "still running"
		if !p.alive() {
			state = fmt.Sprint(p.waitErr)
		}
		fmt.Fprintf(&b, "\n--- node %s (%s), %s; last lines of %s:\n%s\n", p.id, p.url, state, p.logPath, p.tail(40))
	}
	c.t.Logf("server logs:%s", b.String())
}

// chaosOwnerID is the node id of a RoomInfo.Owner ("<node id> <url>"),
// empty when the room has no live lease.
func chaosOwnerID(owner string) string {
	id, _, _ := strings.Cut(owner, " ")
	return id
}
