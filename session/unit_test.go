package session

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lasthit/lasthit/sequencer"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestTokens(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	sign := func(secret []byte, c TokenClaims) string {
		tok, err := SignToken(secret, c)
		require.NoError(t, err)
		return tok
	}
	any := sign(testSecret, TokenClaims{Player: "p7", Expires: now.Add(time.Hour)})
	bound := sign(testSecret, TokenClaims{Player: "p7", Room: "r1", Expires: now.Add(time.Hour)})
	expired := sign(testSecret, TokenClaims{Player: "p7", Expires: now.Add(-time.Second)})
	forged := sign([]byte("another secret, just as long!!!!"), TokenClaims{Player: "p7", Expires: now.Add(time.Hour)})
	parts := strings.Split(any, ".")
	other := strings.Split(sign(testSecret, TokenClaims{Player: "admin", Expires: now.Add(time.Hour)}), ".")
	swapped := parts[0] + "." + other[1] + "." + parts[2] // payload of one, mac of another

	cases := []struct {
		name, token, room string
		secret            []byte
		player, err       string
	}{
		{name: "valid any room", token: any, room: "r9", secret: testSecret, player: "p7"},
		{name: "valid bound room", token: bound, room: "r1", secret: testSecret, player: "p7"},
		{name: "wrong room", token: bound, room: "r2", secret: testSecret, err: "token is for another room"},
		{name: "expired", token: expired, room: "r1", secret: testSecret, err: "token expired"},
		{name: "forged", token: forged, room: "r1", secret: testSecret, err: "bad token signature"},
		{name: "payload swapped", token: swapped, room: "r1", secret: testSecret, err: "bad token signature"},
		{name: "garbage", token: "hello", room: "r1", secret: testSecret, err: "malformed token"},
		{name: "empty", token: "", room: "r1", secret: testSecret, err: "field token: required"},
		{name: "dev token with secret", token: "dev:p1", room: "r1", secret: testSecret, err: "malformed token"},
		{name: "dev", token: "dev:p1", room: "r1", player: "p1"},
		{name: "dev bad player", token: "dev:a b", room: "r1", err: "player id must be 1-64 characters of [A-Za-z0-9_.-]"},
		{name: "dev empty player", token: "dev:", room: "r1", err: "player id must be 1-64 characters of [A-Za-z0-9_.-]"},
		{name: "signed token in dev mode", token: any, room: "r1", err: "the server is in dev mode and accepts only dev:<player> tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			player, err := VerifyToken(c.secret, c.token, c.room, now)
			if c.err != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrUnauthorized)
				assert.Equal(t, c.err, tokenMessage(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.player, player)
		})
	}

	_, err := SignToken([]byte("short"), TokenClaims{Player: "p", Expires: now})
	assert.Error(t, err)
	_, err = SignToken(testSecret, TokenClaims{Player: "a b", Expires: now})
	assert.Error(t, err)
	_, err = SignToken(testSecret, TokenClaims{Player: "p"})
	assert.Error(t, err, "a token without expiry")
}

func TestOutboxBounds(t *testing.T) {
	o := newOutbox(3, 100)
	assert.Equal(t, queued, o.push([]byte("a")))
	assert.Equal(t, queued, o.pushAll([][]byte{[]byte("b"), []byte("c")}))
	frames, c := o.take(nil)
	assert.Nil(t, c)
	assert.Equal(t, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, frames)

	assert.Equal(t, queued, o.push(make([]byte, 60)))
	assert.Equal(t, overflow, o.push(make([]byte, 41)), "bytes bound")
	assert.True(t, o.abort.Load())
	frames, c = o.take(nil)
	assert.Empty(t, frames, "an overflowing outbox drops what it held")
	require.NotNil(t, c)
	assert.Equal(t, CloseSlowConsumer, c.code)
	assert.Equal(t, discarded, o.push([]byte("late")))

	o = newOutbox(2, 100)
	assert.Equal(t, overflow, o.pushAll([][]byte{{1}, {2}, {3}}), "frames bound")

	o = newOutbox(10, 100)
	o.push([]byte("ack"))
	assert.True(t, o.close(closing{code: CloseGoingAway, flush: true}))
	assert.False(t, o.close(closing{code: CloseNormal}), "the first close wins")
	assert.False(t, o.abort.Load())
	assert.Equal(t, discarded, o.push([]byte("after")))
	frames, c = o.take(nil)
	assert.Equal(t, [][]byte{[]byte("ack")}, frames, "a flushing close keeps what preceded it")
	assert.Equal(t, CloseGoingAway, c.code)
}

func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(0, 0)
	b := newTokenBucket(20, 40, t0)
	n := 0
	for b.allow(t0) {
		n++
	}
	assert.Equal(t, 40, n, "burst")
	assert.False(t, b.allow(t0.Add(49*time.Millisecond)))
	assert.True(t, b.allow(t0.Add(50*time.Millisecond)), "one token per 1/rate")
	assert.False(t, b.full(t0.Add(time.Second)))
	assert.True(t, b.full(t0.Add(3*time.Second)))
}

func TestPlayerLimitsShareAndSweep(t *testing.T) {
	t0 := time.Unix(0, 0)
	l := newPlayerLimits(1, 2, 1, 2, 1)
	a := l.acquire("p", t0)
	b := l.acquire("p", t0)
	require.Same(t, a, b, "connections of one player share a bucket")
	assert.True(t, a.allow(t0))
	assert.True(t, b.allow(t0))
	assert.False(t, a.allow(t0))
	l.release(a)
	l.release(b)
	c := l.acquire("p", t0)
	assert.False(t, c.allow(t0), "reconnecting does not refill the bucket")
	l.release(c)

	// "p" has spent its bucket; 63 players more have not. The next new
	// player brings the map to minSweep and sweeps the full idle buckets.
	for i := range minSweep - 1 {
		l.release(l.acquire("idle"+strings.Repeat("y", i), t0))
	}
	l.release(l.acquire("q", t0))
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Len(t, l.buckets, 2, "idle full buckets are swept")
	assert.Contains(t, l.buckets, "p", "a spent bucket is kept until it has refilled")
	assert.Contains(t, l.buckets, "q")
}

func TestOptionsValidate(t *testing.T) {
	o := Options{
		Secret:       []byte("short"),
		ReadLimit:    100,
		PongWait:     time.Second,
		PingPeriod:   2 * time.Second,
		OutboxFrames: -1,
		RateLimit:    -1,
		AllowOrigins: []string{"game.example.com", "https://ok.example.com"},
	}
	o.setDefaults()
	err := o.validate()
	require.Error(t, err)
	for _, want := range []string{"Secret:", "ReadLimit:", "PingPeriod:", "OutboxFrames:", "RateLimit:", `AllowOrigins: "game.example.com"`} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "ok.example.com")

	var d Options
	d.setDefaults()
	require.NoError(t, d.validate())

	// NaN passes every comparison (and would let every action through).
	n := Options{RateLimit: math.NaN(), JoinRate: math.Inf(1)}
	n.setDefaults()
	err = n.validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "RateLimit: must be a positive number, got NaN")
	assert.Contains(t, err.Error(), "JoinRate: must be a positive number, got +Inf")
	assert.Equal(t, int64(4096), d.ReadLimit)
	assert.Equal(t, 54*time.Second, d.PingPeriod)
	assert.Equal(t, 20.0, d.RateLimit)
	assert.Equal(t, 40, d.RateBurst)
	assert.Equal(t, uint64(10_000), d.MaxResume)
}

type redirectErr struct{ url string }

func (e redirectErr) Error() string       { return "owned elsewhere" }
func (e redirectErr) RedirectURL() string { return e.url }

func TestJoinFailure(t *testing.T) {
	cases := []struct {
		err   error
		code  sequencer.Code
		close int
	}{
		{sequencer.ErrRoomFull, CodeRoomFull, CloseTryLater},
		{sequencer.ErrShutdown, sequencer.CodeUnavailable, CloseTryLater},
		{sequencer.ErrUnavailable, sequencer.CodeUnavailable, CloseTryLater},
		{sequencer.ErrClosed, sequencer.CodeUnavailable, CloseTryLater},
		{errors.Join(sequencer.ErrBadAction, errors.New("room name")), sequencer.CodeBadRequest, ClosePolicy},
	}
	for _, c := range cases {
		perr, close := joinFailure(c.err)
		assert.Equal(t, c.code, perr.Code, c.err.Error())
		assert.Equal(t, c.close, close, c.err.Error())
	}
	var r redirecter
	require.True(t, errors.As(errors.Join(sequencer.ErrUnavailable, redirectErr{"ws://b:7777/ws"}), &r))
	assert.Equal(t, "ws://b:7777/ws", r.RedirectURL())
}
