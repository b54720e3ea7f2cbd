// Package redistest starts real redis-server processes for tests: each on a
// free loopback port (never 6379) with its data in the test's temporary
// directory, so a test never touches a Redis it did not start or data it
// did not write. A server can be killed with SIGKILL and restarted on the
// same port and directory, which is how the crash tests lose a Redis.
//
// Ownership: a Server belongs to the test that started it; its methods are
// called from that test's goroutine. It is stopped when the test ends.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// NotFound is the message a test fails with when redis-server is missing.
const NotFound = "redis-server not found: run `make test`, which installs it, or apt-get install redis-server"

// Options choose the persistence a test asks for.
type Options struct {
	// AppendOnly turns the AOF on (appendonly yes). Default off.
	AppendOnly bool
	// AppendFsync is appendfsync: "always", "everysec" or "no". Default
	// "everysec" (Redis's default). Only meaningful with AppendOnly.
	AppendFsync string
	// Config holds extra redis.conf lines, e.g. "maxmemory 64mb".
	Config []string
	// StartTimeout bounds waiting for the server to answer. Default 20s
	// (a restart replays the AOF first).
	StartTimeout time.Duration
}

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	opts Options
	dir  string
	port int
	cmd  *exec.Cmd
	exit chan error // the running process's Wait result
}

// Start starts a redis-server with opts and stops it when the test ends.
// It fails the test (never skips it) when redis-server is not on PATH.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(NotFound)
	}
	if opts.AppendFsync == "" {
		opts.AppendFsync = "everysec"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 20 * time.Second
	}
	s := &Server{t: t, opts: opts, dir: t.TempDir()}
	t.Cleanup(s.stop)
	// A port found free can be taken before redis binds it; try again
	// with another one.
	var lastErr error
	for range 5 {
		if s.port, lastErr = freePort(); lastErr != nil {
			continue
		}
		if lastErr = s.writeConfig(); lastErr != nil {
			break
		}
		if lastErr = s.launch(bin); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// freePort asks the kernel for a free loopback port. 6379 is never used,
// so a system Redis is never hit by mistake.
func freePort() (int, error) {
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port != 6379 {
			return port, nil
		}
	}
}

func (s *Server) writeConfig() error {
	yes := map[bool]string{true: "yes", false: "no"}
	lines := []string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(s.port),
		"dir " + s.dir,
		"daemonize no",
		"save \"\"", // no RDB snapshots: the AOF alone decides what survives
		"appendonly " + yes[s.opts.AppendOnly],
		"appendfsync " + s.opts.AppendFsync,
		"logfile " + filepath.Join(s.dir, "redis.log"),
		"loglevel notice",
	}
	lines = append(lines, s.opts.Config...)
	return os.WriteFile(filepath.Join(s.dir, "redis.conf"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// launch starts the process and waits until it answers PING and has
// finished loading its data.
func (s *Server) launch(bin string) error {
	cmd := exec.Command(bin, filepath.Join(s.dir, "redis.conf"))
	cmd.Dir = s.dir
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	s.cmd, s.exit = cmd, exit

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StartTimeout)
	defer cancel()
	c := redis.NewClient(&redis.Options{
		Addr:                     s.Addr(),
		MaxRetries:               -1,
		DialTimeout:              200 * time.Millisecond,
		ReadTimeout:              time.Second,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	defer c.Close()
	err := waitFor(ctx, 5*time.Millisecond, func() error {
		select {
		case err := <-exit:
			exit <- err // keep it for stop
			return errExited{err}
		default:
		}
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		if strings.Contains(info, "loading:1") {
			return errors.New("still loading")
		}
		return nil
	})
	if err != nil {
		s.kill()
		return fmt.Errorf("port %d: %w; log:\n%s", s.port, err, s.Log())
	}
	return nil
}

type errExited struct{ err error }

func (e errExited) Error() string { return fmt.Sprintf("redis-server exited: %v", e.err) }

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Log returns the tail of the server's log file.
func (s *Server) Log() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const tail = 4 << 10
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

// Kill sends SIGKILL and waits for the process to end: nothing is flushed,
// exactly what a crash of redis-server looks like to its data.
func (s *Server) Kill() {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("redistest: Kill: server not running")
	}
	s.kill()
}

func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exit
	s.cmd, s.exit = nil, nil
}

// Restart starts the server again on the same port and directory (after
// Kill, or killing it first) and waits until it has loaded its data.
func (s *Server) Restart() {
	s.t.Helper()
	s.kill()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatal(NotFound)
	}
	if err := s.launch(bin); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) stop() { s.kill() }

// CheckFor calls f every interval until it returns nil, failing the test
// with f's last error if total passes first (nats' checkFor).
func CheckFor(t testing.TB, total, interval time.Duration, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	if err := waitFor(ctx, interval, f); err != nil {
		t.Fatalf("redistest: condition not met after %v: %v", total, err)
	}
}

func waitFor(ctx context.Context, interval time.Duration, f func() error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		var exited errExited
		if errors.As(err, &exited) {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return err
		}
	}
}

// KillWithParent makes the kernel kill cmd's process (SIGKILL) if the test
// binary dies without running its cleanups, as every redis-server here is
// tied to it: for tests that start processes of their own (the game
// servers of the chaos test). Only Linux can; elsewhere it does nothing.
// Call it before cmd.Start; it sets cmd.SysProcAttr.
func KillWithParent(cmd *exec.Cmd) { setDeathSignal(cmd) }
