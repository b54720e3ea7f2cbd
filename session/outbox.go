package session

import (
	"sync"
	"sync/atomic"
)

// closing is why and how a connection ends.
type closing struct {
	code int
	text string
	// flush: write the frames queued before the close first (acks of
	// in-flight actions at shutdown); otherwise they are dropped.
	flush bool
}

// pushResult says what became of a pushed frame.
type pushResult int

const (
	queued    pushResult = iota
	discarded            // the connection is closing; the frame is dropped
	overflow             // this push exceeded a bound; the outbox now closes with 4000
)

// outbox is a session's bounded queue of frames for the write pump (STYLE
// #3): a mutex, a slice and a notify channel with room for one signal. Any
// goroutine may push (the room loop publishes events and answers actions,
// the read pump queues pongs and errors); only the write pump takes. It is
// bounded by frames and by bytes; a push past either bound closes the
// outbox with 4000 and drops what is queued: a consumer that far behind
// resumes with since instead.
type outbox struct {
	maxFrames int
	maxBytes  int
	notify    chan struct{}
	// abort is set with a close that does not flush, so the write pump
	// stops in the middle of a batch it has already taken.
	abort atomic.Bool

	mu      sync.Mutex
	frames  [][]byte
	bytes   int
	closing *closing
}

func newOutbox(maxFrames, maxBytes int) *outbox {
	return &outbox{
		maxFrames: maxFrames,
		maxBytes:  maxBytes,
		notify:    make(chan struct{}, 1),
		frames:    make([][]byte, 0, min(maxFrames, 16)),
	}
}

func (o *outbox) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// push queues one frame.
func (o *outbox) push(frame []byte) pushResult {
	o.mu.Lock()
	r := o.pushLocked(1, len(frame))
	if r == queued {
		o.frames = append(o.frames, frame)
		o.bytes += len(frame)
	}
	o.mu.Unlock()
	if r != discarded {
		o.wake()
	}
	return r
}

// pushAll queues frames as one unit: all or none.
func (o *outbox) pushAll(frames [][]byte) pushResult {
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	o.mu.Lock()
	r := o.pushLocked(len(frames), size)
	if r == queued {
		o.frames = append(o.frames, frames...)
		o.bytes += size
	}
	o.mu.Unlock()
	if r != discarded {
		o.wake()
	}
	return r
}

func (o *outbox) pushLocked(n, size int) pushResult {
	if o.closing != nil {
		return discarded
	}
	if len(o.frames)+n > o.maxFrames || o.bytes+size > o.maxBytes {
		o.closing = &closing{code: CloseSlowConsumer, text: "slow consumer: reconnect with since"}
		o.abort.Store(true)
		clear(o.frames)
		o.frames, o.bytes = o.frames[:0], 0
		return overflow
	}
	return queued
}

// close asks for the connection to end; the first reason wins. It reports
// whether this call set it.
func (o *outbox) close(c closing) bool {
	o.mu.Lock()
	first := o.closing == nil
	if first {
		o.closing = &c
		if !c.flush {
			o.abort.Store(true)
			clear(o.frames)
			o.frames, o.bytes = o.frames[:0], 0
		}
	}
	o.mu.Unlock()
	if first {
		o.wake()
	}
	return first
}

// closed returns the closing reason, or nil.
func (o *outbox) closed() *closing {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closing
}

// take swaps the queued frames for spare (emptied) and returns them with
// the closing reason, if any. Frames queued after a close are never
// queued, so what take returns alongside a flushing close is exactly what
// preceded it.
func (o *outbox) take(spare [][]byte) ([][]byte, *closing) {
	o.mu.Lock()
	out := o.frames
	o.frames, o.bytes = spare[:0], 0
	c := o.closing
	o.mu.Unlock()
	return out, c
}
