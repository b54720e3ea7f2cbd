package redistest

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func client(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestKillRestartKeepsFsyncedWrites: a write acked under appendfsync
// always survives SIGKILL and a restart on the same port and directory.
func TestKillRestartKeepsFsyncedWrites(t *testing.T) {
	s := Start(t, Options{AppendOnly: true, AppendFsync: "always"})
	require.NotEqual(t, 6379, s.Port())
	require.True(t, strings.HasPrefix(s.Addr(), "127.0.0.1:"))
	ctx := context.Background()
	c := client(t, s.Addr())
	cfg, err := c.ConfigGet(ctx, "append*").Result()
	require.NoError(t, err)
	require.Equal(t, "yes", cfg["appendonly"])
	require.Equal(t, "always", cfg["appendfsync"])
	dir, err := c.ConfigGet(ctx, "dir").Result()
	require.NoError(t, err)
	require.Equal(t, s.Dir(), dir["dir"])
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	s.Kill()
	require.Error(t, c.Ping(ctx).Err())
	port := s.Port()
	s.Restart()
	require.Equal(t, port, s.Port())
	require.Equal(t, "v", c.Get(ctx, "k").Val())
}

func TestDefaultsHaveNoAOF(t *testing.T) {
	s := Start(t, Options{})
	cfg, err := client(t, s.Addr()).ConfigGet(context.Background(), "appendonly").Result()
	require.NoError(t, err)
	require.Equal(t, "no", cfg["appendonly"])
}

// fatalTB records the first Fatal and ends the goroutine, as testing.T
// does, so a helper's failure can itself be tested.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinaryFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &fatalTB{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		Start(f, Options{})
	}()
	wg.Wait()
	require.Equal(t, NotFound, f.msg)
}

func TestProxyForwardsAndDrops(t *testing.T) {
	s := Start(t, Options{})
	var drop sync.Mutex
	dropping := false
	p := StartProxy(t, s.Addr(), func(reply []byte) bool {
		drop.Lock()
		defer drop.Unlock()
		return dropping && strings.Contains(string(reply), "v2")
	})
	ctx := context.Background()
	c := client(t, p.Addr())
	require.NoError(t, c.Set(ctx, "k", "v1", 0).Err())
	require.Equal(t, "v1", c.Get(ctx, "k").Val())

	drop.Lock()
	dropping = true
	drop.Unlock()
	require.NoError(t, c.Set(ctx, "k", "v2", 0).Err())
	// The GET runs; its reply (v2) is lost with the connection.
	require.Error(t, c.Get(ctx, "k").Err())
	require.Equal(t, int64(1), p.Dropped())
	require.Equal(t, "v2", client(t, s.Addr()).Get(ctx, "k").Val())

	p.Close()
	_, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	require.Error(t, err)
}

func TestCheckFor(t *testing.T) {
	n := 0
	CheckFor(t, time.Second, time.Millisecond, func() error {
		if n++; n < 3 {
			return fmt.Errorf("n=%d", n)
		}
		return nil
	})
	require.Equal(t, 3, n)
}
