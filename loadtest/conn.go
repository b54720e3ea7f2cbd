package loadtest

import (
	"bytes"
	"errors"
	"hash/maphash"
	"time"

	"github.com/gorilla/websocket"
)

// Connection limits, named as in gorilla's chat example. (The read
// timeout is Config.ReadTimeout: bots ping every Config.PingEvery, so a
// live server answers well within it.)
const (
	// writeWait bounds one write.
	writeWait = 5 * time.Second
	// dialTimeout bounds the WebSocket handshake (and so does
	// Config.ReadTimeout, when shorter).
	dialTimeout = 5 * time.Second
	// joinTimeout bounds hello → welcome.
	joinTimeout = 10 * time.Second
	// closeWait is how long a closing connection waits for the server's
	// close reply before it is cut.
	closeWait = time.Second
	// maxFrameSize bounds one server frame (a welcome's state grows with
	// the room's players).
	maxFrameSize = 1 << 20
	// inboundQueue is how many decoded frames may wait for the bot; a full
	// queue stops the read pump, and the server sees a slow reader.
	inboundQueue = 256
)

// Why this side ends a connection.
type endReason int

const (
	endNone        endReason = iota // the server or the network ended it
	endDrop                         // reconnect scenario: on purpose
	endJoinTimeout                  // no welcome within joinTimeout
	endWrite                        // a write failed
	endExit                         // the bot is stopping
)

// conn is one connection of a bot. The bot's goroutine owns every field
// but err and in, which belong to the read pump until it closes in.
type conn struct {
	ws     *websocket.Conn
	url    string
	since  uint64 // sent in the hello
	opened time.Time

	in  chan inbound // closed by the read pump when it ends
	err error        // why the read pump ended; set before in is closed

	live     bool   // welcomed
	errCode  string // code of an error frame received before welcome
	errMsg   string
	redirect string // url of a redirect frame

	// Once closing is set nothing more is written; frames still arriving
	// are handled until the read pump ends.
	closing   bool
	reason    endReason
	closingAt time.Time
	cutAt     time.Time // when to cut a close the server does not answer
}

// inbound is a frame as the read pump hands it to the bot. It holds no
// reference to the read pump's buffer: the decoded strings are copies (or
// interned), and raw is a copy.
type inbound struct {
	f    serverFrame
	hash uint64    // of the frame's bytes, to compare across bots
	recv time.Time // when it was read
	err  error     // the frame could not be decoded
	// raw is the frame's bytes when an Observer wants them, else nil. It
	// is a copy made for the Observer, and nobody writes it after the read
	// pump, so it is immutable.
	raw []byte
}

// readPump reads, hashes and decodes frames until the connection ends or
// shows nothing for timeout. It is the connection's only reader. keepRaw
// hands each frame's bytes to the bot too.
//
// Every frame is read into the same buffer: hashing and decoding are done
// with the bytes before the next frame is read, and nothing handed to the
// bot refers to them (see inbound).
func (c *conn) readPump(seed maphash.Seed, timeout time.Duration, keepRaw bool) {
	defer close(c.in)
	var (
		buf bytes.Buffer
		dec frameDecoder
	)
	for {
		c.ws.SetReadDeadline(time.Now().Add(timeout))
		mt, data, err := readMessage(c.ws, &buf)
		if err != nil {
			c.err = err
			return
		}
		m := inbound{recv: time.Now(), hash: maphash.Bytes(seed, data)}
		if keepRaw {
			m.raw = bytes.Clone(data)
		}
		if mt != websocket.TextMessage {
			m.err = errors.New("binary frame")
		} else {
			m.err = dec.decode(data, &m.f)
		}
		c.in <- m
	}
}

// maxKeptBuffer is the largest read buffer a read pump keeps between
// frames; one grown past it by a large frame (a welcome with a big state)
// is dropped after that frame.
const maxKeptBuffer = 64 << 10

// readMessage is websocket.Conn.ReadMessage into buf, reset first: the
// message it returns aliases buf and is valid until buf is next used.
func readMessage(ws *websocket.Conn, buf *bytes.Buffer) (messageType int, data []byte, err error) {
	if buf.Cap() > maxKeptBuffer {
		*buf = bytes.Buffer{}
	}
	buf.Reset()
	messageType, r, err := ws.NextReader()
	if err != nil {
		return messageType, nil, err
	}
	_, err = buf.ReadFrom(r)
	return messageType, buf.Bytes(), err
}

// write sends one text frame; it reports false when the connection is
// closing or the write failed (which starts closing it).
func (c *conn) write(frame []byte, now time.Time) bool {
	if c.closing {
		return false
	}
	c.ws.SetWriteDeadline(now.Add(writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		c.close(endWrite, now, false)
		return false
	}
	return true
}

// close starts ending the connection: gracefully with a close frame (the
// server's reply ends the read pump, or the cut does), or at once.
func (c *conn) close(reason endReason, now time.Time, graceful bool) {
	if c.closing {
		return
	}
	c.closing, c.reason, c.closingAt = true, reason, now
	if graceful {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if c.ws.WriteControl(websocket.CloseMessage, msg, now.Add(writeWait)) == nil {
			c.cutAt = now.Add(closeWait)
			return
		}
	}
	c.cut()
}

// cut closes the socket: the read pump ends at once.
func (c *conn) cut() {
	c.cutAt = time.Time{}
	c.ws.Close()
}

// closeCode is the close code the server sent, or 0 when the connection
// ended without one.
func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure && ce.Code != websocket.CloseNoStatusReceived {
		return ce.Code
	}
	return 0
}
