package session

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// corkConn is the network connection under a websocket.Conn. While corked,
// writes collect in a buffer and leave in one write when uncorked: the
// write pump corks around each wake-up, so the frames it sends (each still
// its own WebSocket frame holding one JSON object) cost one system call
// instead of one each. Uncorked, writes go straight through, as the
// handshake and control frames written by other goroutines need.
type corkConn struct {
	net.Conn
	max int // flush early once this many bytes are waiting

	mu       sync.Mutex
	corked   bool
	buf      []byte
	deadline time.Time // the write deadline last set on Conn
}

// SetWriteDeadline passes t on unless it is the deadline already set.
// gorilla/websocket sets the deadline before every frame it writes, and
// moving it costs a timer update in the poller; the write pump keeps the
// same deadline for many frames (see session.writeFrames).
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Equal(c.deadline) && !t.IsZero() {
		return nil
	}
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	c.deadline = t
	return nil
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= c.max {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was collected, under the write deadline last set.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 4*c.max {
		c.buf = nil // a burst's buffer is not kept for an idle connection
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// corkWriter hands the upgrader a corkConn when it hijacks the connection.
type corkWriter struct {
	http.ResponseWriter
	max  int
	conn *corkConn
}

func (w *corkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("session: response does not implement http.Hijacker")
	}
	c, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: c, max: w.max}
	return w.conn, brw, nil
}
