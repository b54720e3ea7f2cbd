package session

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type countingConn struct {
	net.Conn
	writes    atomic.Int32
	bytes     atomic.Int32
	deadlines atomic.Int32
}

func (c *countingConn) SetWriteDeadline(time.Time) error {
	c.deadlines.Add(1)
	return nil
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	c.bytes.Add(int32(len(p)))
	return len(p), nil
}

func TestCorkConn(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under, max: 100}

	_, err := c.Write([]byte("uncorked"))
	require.NoError(t, err)
	assert.Equal(t, int32(1), under.writes.Load(), "uncorked writes go straight through")

	c.cork()
	for i := 0; i < 5; i++ {
		_, err := c.Write([]byte("0123456789"))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), under.writes.Load(), "corked writes wait")
	require.NoError(t, c.uncork())
	assert.Equal(t, int32(2), under.writes.Load(), "five frames, one write")
	assert.Equal(t, int32(8+50), under.bytes.Load())

	c.cork()
	for i := 0; i < 25; i++ {
		_, err := c.Write([]byte("0123456789"))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(4), under.writes.Load(), "a full buffer is written early")
	require.NoError(t, c.uncork())
	assert.Equal(t, int32(5), under.writes.Load())
	assert.Equal(t, int32(8+50+250), under.bytes.Load(), "nothing lost or repeated")
}

// gorilla/websocket sets the write deadline before every frame; only a
// deadline that changes reaches the connection.
func TestCorkConnDeadline(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under, max: 100}
	d1 := time.Now().Add(time.Second)
	for range 3 {
		require.NoError(t, c.SetWriteDeadline(d1))
	}
	assert.Equal(t, int32(1), under.deadlines.Load(), "the same deadline is set once")
	d2 := d1.Add(time.Millisecond)
	require.NoError(t, c.SetWriteDeadline(d2))
	require.NoError(t, c.SetWriteDeadline(d1))
	assert.Equal(t, int32(3), under.deadlines.Load(), "every change is passed on")
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	assert.Equal(t, int32(5), under.deadlines.Load(), "clearing the deadline is always passed on")
}
