package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/sequencer"
)

const (
	// closeGrace is how long the server waits for the client's close reply
	// (or for it to hang up) after sending a close frame.
	closeGrace = time.Second
	// historyPage is how many logged events one read of a resume fetches.
	historyPage = 256
	// badFrameWindow is the period over which MaxBadFrames are regained.
	badFrameWindow = time.Minute
	// corkLimit is how many bytes a wake-up of the write pump collects
	// before it writes them out (see corkConn).
	corkLimit = 64 << 10
)

// session is one connection: one player in one room. See doc.go for which
// goroutine owns what.
type session struct {
	srv    *Server
	conn   *websocket.Conn
	cork   *corkConn // the connection under conn
	id     string
	ip     string
	logger zerolog.Logger
	out    *outbox

	// Set by the handshake before Join (player, roomName, bucket) or right
	// after it (room); read-only once the write pump starts. The room loop
	// may call in as soon as Join has registered the session, so it only
	// reads the fields set before Join.
	player   string
	roomName string
	bucket   *playerBucket // nil when the rate limit is off
	room     *sequencer.Room

	// Owned by the read pump.
	buf bytes.Buffer
	bad tokenBucket
	// Resends: an action with a cseq up to resendUpTo (the join's
	// Welcome.LastCSeq) was sequenced or queued before this connection
	// joined. Up to resendsLeft of them, in rising cseq order (above
	// lastResend), each spending a resend the player's bucket earned with
	// an admitted action, skip the rate limit and the queue limit: a
	// reject would say they got no seq when they did or will.
	resendUpTo, lastResend uint64
	resendsLeft            int

	// replaced is set when a newer connection of the player has joined;
	// the room then refuses this one's pushes (sequencer.Action.Replaced).
	replaced atomic.Bool

	// Owned by the write pump: the write deadline last given to conn, which
	// gorilla/websocket applies before each frame it writes.
	writeDeadline time.Time

	mu   sync.Mutex
	live bool // the write pump owns writing; guarded by mu

	readDone  chan struct{}
	writeDone chan struct{}
}

func newSession(srv *Server, conn *websocket.Conn, cork *corkConn, id, ip string) *session {
	o := &srv.opts
	return &session{
		srv:       srv,
		conn:      conn,
		cork:      cork,
		id:        id,
		ip:        ip,
		logger:    srv.logger.With().Str("session", id).Str("remote", ip).Logger(),
		out:       newOutbox(o.OutboxFrames, o.OutboxBytes),
		bad:       newTokenBucket(float64(o.MaxBadFrames)/badFrameWindow.Seconds(), o.MaxBadFrames, time.Now()),
		readDone:  make(chan struct{}),
		writeDone: make(chan struct{}),
	}
}

// run serves the connection: handshake, then the read pump here and the
// write pump in its own goroutine, then cleanup once both have ended.
func (s *session) run() {
	defer s.conn.Close()
	ok := s.handshake()
	if ok {
		s.goLive()
		go s.writePump()
		err := s.readPump()
		if errors.Is(err, websocket.ErrReadLimit) {
			s.srv.stats.tooBig.Add(1)
			s.drainRaw()
		}
		close(s.readDone)
		s.conn.Close() // unblocks a write pump stuck on a peer that is gone
		<-s.writeDone
		s.srv.stats.joined.Add(-1)
	}
	s.out.close(closing{code: CloseNormal}) // late acks and events are dropped
	if s.room != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.opts.JoinTimeout)
		if err := s.room.Leave(ctx, s.player, s); err != nil && !errors.Is(err, sequencer.ErrClosed) {
			s.logger.Warn().Err(err).Msg("leave not sequenced")
		}
		cancel()
	}
	if s.bucket != nil {
		s.srv.limits.release(s.bucket)
	}
	s.logger.Debug().Msg("session ended")
}

// goLive hands writing over to the write pump. A shutdown that tried to
// interrupt the hello wait may have set a past read deadline; the deadline
// set here replaces it before the read pump's first read.
func (s *session) goLive() {
	o := &s.srv.opts
	s.mu.Lock()
	s.live = true
	s.conn.SetReadDeadline(time.Now().Add(o.PongWait))
	s.mu.Unlock()
	s.conn.SetPongHandler(func(string) error {
		return s.conn.SetReadDeadline(time.Now().Add(o.PongWait))
	})
	s.srv.stats.joined.Add(1)
}

// shutdown closes the session with 1001 once what is queued is written.
// A session still waiting for its hello is interrupted.
func (s *session) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.close(closing{code: CloseGoingAway, text: "server shutting down", flush: true})
	if !s.live {
		// The net.Conn, not the websocket.Conn: this is not the reader's
		// goroutine, and net.Conn deadlines are safe from any goroutine.
		s.conn.NetConn().SetReadDeadline(time.Now())
	}
}

// cut ends the connection at once (shutdown ran out of time).
func (s *session) cut() { s.conn.Close() }

// readFrame reads one message into the session's buffer, which is reused:
// the frame is valid until the next call.
func (s *session) readFrame() (int, []byte, error) {
	mt, r, err := s.conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	s.buf.Reset()
	if _, err := s.buf.ReadFrom(r); err != nil {
		return 0, nil, err
	}
	return mt, s.buf.Bytes(), nil
}

// Handshake: until it returns true, the goroutine running it is the only
// writer of the connection.

// handshake reads the hello, checks the token, joins the room and writes
// welcome and the history the client missed. On failure it has answered
// and closed the connection, and returns false.
func (s *session) handshake() bool {
	o := &s.srv.opts
	s.conn.SetReadDeadline(time.Now().Add(o.HelloTimeout))
	mt, data, err := s.readFrame()
	if err != nil {
		var ne net.Error
		switch {
		case s.out.closed() != nil:
			c := s.out.closed()
			s.refuse(&protoError{Code: sequencer.CodeUnavailable, Message: c.text}, c.code, false)
		case errors.As(err, &ne) && ne.Timeout():
			s.refuse(badRequest("no hello within %v", o.HelloTimeout), ClosePolicy, false)
		case errors.Is(err, websocket.ErrReadLimit):
			s.srv.stats.tooBig.Add(1)
			s.drainRaw()
		default:
			s.logger.Debug().Err(err).Msg("connection ended before hello")
		}
		return false
	}
	if mt != websocket.TextMessage {
		s.refuse(badRequest("the first frame must be a hello text frame"), ClosePolicy, true)
		return false
	}
	f, perr := decodeFrame(data)
	if perr == nil && f.Type != typeHello {
		perr = badRequest("the first frame must be hello")
	}
	if perr != nil {
		s.refuse(perr, ClosePolicy, true)
		return false
	}
	player, err := VerifyToken(o.Secret, f.Token, f.Room, time.Now())
	if err != nil {
		s.refuse(&protoError{Code: CodeUnauthorized, Message: tokenMessage(err)}, ClosePolicy, true)
		return false
	}
	s.player, s.roomName = player, f.Room
	s.logger = s.logger.With().Str("room", f.Room).Str("player", player).Logger()
	if s.srv.limits != nil {
		s.bucket = s.srv.limits.acquire(player, time.Now())
		if !s.bucket.allowJoin(time.Now()) {
			s.srv.stats.joinsLimited.Add(1)
			s.refuse(&protoError{Code: sequencer.CodeUnavailable, Message: fmt.Sprintf(
				"joining too often: at most %g joins/s (burst %d) per player; try again later", o.JoinRate, o.JoinBurst)}, CloseTryLater, true)
			return false
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.JoinTimeout)
	defer cancel()
	// A since past the room's last seq is refused before the join, which
	// would replace the player's live connection and log a join and a
	// leave. The log is asked first, so that a room not open is not opened
	// for the refusal: the log holds every seq a client was sent (persist,
	// then tell), so a since past the log's is past the room's.
	if f.Since > 0 {
		if meta, err := s.srv.reg.Options().Log.Meta(ctx, f.Room); err == nil && f.Since > meta.LastSeq {
			s.refuse(sinceTooLarge(f.Since, meta.LastSeq), ClosePolicy, true)
			return false
		}
		// On an error the room's own seq below decides.
	}
	room, err := s.srv.reg.Room(ctx, f.Room)
	if err != nil {
		s.refuseJoin(err)
		return false
	}
	if f.Since > 0 {
		// Checked before the join, which would replace the player's live
		// connection and log entries; checked again after it, as a room
		// rebuilt meanwhile from a log that lost its tail has a lower seq.
		info, err := room.Info(ctx)
		if err != nil {
			s.refuseJoin(err)
			return false
		}
		if f.Since > info.Seq {
			s.refuse(sinceTooLarge(f.Since, info.Seq), ClosePolicy, true)
			return false
		}
	}
	welcome, err := room.Join(ctx, player, s)
	if err != nil {
		s.refuseJoin(err)
		return false
	}
	s.room = room // from here on, run leaves the room at the end
	if f.Since > welcome.Seq {
		s.refuse(sinceTooLarge(f.Since, welcome.Seq), ClosePolicy, true)
		return false
	}
	s.resendUpTo, s.resendsLeft = welcome.LastCSeq, o.MaxResends
	return s.sendWelcome(ctx, f.Room, f.Since, welcome)
}

func sinceTooLarge(since, last uint64) *protoError {
	return badRequest("field since: %d is after the room's last seq %d", since, last)
}

// tokenMessage drops the "unauthorized: " the error code already says.
func tokenMessage(err error) string {
	msg, _ := strings.CutPrefix(err.Error(), ErrUnauthorized.Error()+": ")
	return msg
}

// sendWelcome writes welcome, then either the state or the events
// since+1..welcome.Seq from the log. Live events published meanwhile wait
// in the outbox (bounded: a client too slow to take its history is closed
// with 4000 by the write pump).
func (s *session) sendWelcome(ctx context.Context, room string, since uint64, w sequencer.Welcome) bool {
	log := s.srv.reg.Options().Log
	withState := since == 0 || w.Seq-since > s.srv.opts.MaxResume
	var page []queue.Record
	if !withState && since < w.Seq {
		recs, err := log.Read(ctx, room, since+1, w.Seq, historyPage)
		switch {
		case errors.Is(err, queue.ErrTrimmed):
			withState = true
		case err != nil:
			s.logger.Warn().Err(err).Msg("history not readable")
			s.refuse(&protoError{Code: sequencer.CodeUnavailable, Message: "room history unavailable; try again"}, CloseTryLater, true)
			return false
		default:
			page = recs
		}
	}
	if c := s.out.closed(); c != nil && !c.flush {
		s.closeDirect(c.code, c.text, true)
		return false
	}
	if err := s.writeDirect(encodeWelcome(room, s.player, w, withState)); err != nil {
		return false
	}
	if withState {
		return true
	}
	next := since + 1
	for next <= w.Seq {
		if len(page) == 0 {
			recs, err := log.Read(ctx, room, next, w.Seq, historyPage)
			if err != nil || len(recs) == 0 {
				// Trimmed while being sent, or the client took too long to
				// take it: it resumes from what it got (and gets the state
				// if that is no longer kept), as after any 4000.
				s.logger.Info().Err(err).Uint64("next", next).Msg("history interrupted")
				s.closeDirect(CloseSlowConsumer, "history interrupted: reconnect with since", true)
				return false
			}
			page = recs
		}
		if err := s.conn.SetWriteDeadline(time.Now().Add(s.srv.opts.WriteWait)); err != nil {
			return false
		}
		for _, rec := range page {
			if rec.Seq != next {
				s.logger.Error().Uint64("want", next).Uint64("got", rec.Seq).Msg("log returned a gap")
				s.closeDirect(CloseServerError, "history has a gap", true)
				return false
			}
			if err := s.conn.WriteMessage(websocket.TextMessage, rec.Event); err != nil {
				s.writeFailed(err)
				return false
			}
			next++
		}
		page = nil
		if c := s.out.closed(); c != nil && !c.flush {
			break // the write pump closes with c
		}
	}
	return true
}

// refuseJoin answers an error of Registry.Room or Room.Join.
func (s *session) refuseJoin(err error) {
	var r redirecter
	if errors.As(err, &r) && r.RedirectURL() != "" {
		if s.writeDirect(encodeRedirect(r.RedirectURL())) == nil {
			s.closeDirect(CloseRedirect, "room is served elsewhere", true)
		}
		return
	}
	perr, code := joinFailure(err)
	if code == CloseTryLater {
		s.logger.Info().Err(err).Msg("join refused")
	}
	s.refuse(perr, code, true)
}

// redirecter is an error that names the server owning a room
// (queue.OwnerError from Registry.Room). An empty URL means the owner is
// not answering and its lease has not expired yet: try again later.
type redirecter interface{ RedirectURL() string }

// joinFailure maps an error of Registry.Room or Room.Join to the error
// frame and close code of PROTOCOL.md "Joining".
func joinFailure(err error) (*protoError, int) {
	switch {
	case errors.Is(err, sequencer.ErrRoomFull):
		return &protoError{Code: CodeRoomFull, Message: "room is full"}, CloseTryLater
	case errors.Is(err, sequencer.ErrBadAction):
		return badRequest("%v", err), ClosePolicy
	case errors.Is(err, sequencer.ErrShutdown):
		return &protoError{Code: sequencer.CodeUnavailable, Message: "server shutting down"}, CloseTryLater
	default:
		return &protoError{Code: sequencer.CodeUnavailable, Message: "room unavailable; try again later"}, CloseTryLater
	}
}

// writeDirect writes one frame from the handshake.
func (s *session) writeDirect(frame []byte) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.srv.opts.WriteWait)); err != nil {
		return err
	}
	err := s.conn.WriteMessage(websocket.TextMessage, frame)
	if err != nil {
		s.writeFailed(err)
	}
	return err
}

// refuse answers a failed join: one error frame, then the close.
// readable says whether the connection can still be read (false after a
// read error), which decides how the close reply is awaited.
func (s *session) refuse(perr *protoError, code int, readable bool) {
	s.logger.Debug().Str("code", string(perr.Code)).Str("message", perr.Message).Int("close", code).Msg("join refused")
	if s.writeDirect(encodeError(perr)) != nil {
		return
	}
	s.closeDirect(code, perr.Message, readable)
}

// closeDirect sends a close frame and waits up to closeGrace for the
// client's reply (or its hang-up), so the close is not lost to a reset.
func (s *session) closeDirect(code int, text string, readable bool) {
	err := s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, closeText(text)), time.Now().Add(s.srv.opts.WriteWait))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		return
	}
	if !readable {
		s.drainRaw()
		return
	}
	s.conn.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := s.conn.NextReader(); err != nil {
			return
		}
	}
}

// closeText fits a close reason into a control frame (125 bytes less the
// code).
func closeText(s string) string {
	return cutUTF8(s, 120)
}

// drainRaw discards what the client still sends, bypassing the websocket
// reader (whose state is broken after a read error), until the client
// hangs up or closeGrace passes. Closing a socket with unread input would
// reset it and could destroy the close frame before the client reads it.
func (s *session) drainRaw() {
	nc := s.conn.NetConn()
	nc.SetReadDeadline(time.Now().Add(closeGrace))
	_, _ = io.Copy(io.Discard, nc)
}

// Read pump.

// readPump decodes client frames and acts on them until the connection
// ends; it returns the read error that ended it.
func (s *session) readPump() error {
	for {
		mt, data, err := s.readFrame()
		if err != nil {
			if !websocket.IsCloseError(err, CloseNormal, CloseGoingAway) {
				s.logger.Debug().Err(err).Msg("read ended")
			}
			return err
		}
		if s.out.closed() != nil {
			continue // closing: wait for the client's close reply, act on nothing
		}
		if mt != websocket.TextMessage {
			s.badFrame(badRequest("binary frames are not supported: send JSON text frames"))
			continue
		}
		f, perr := decodeFrame(data)
		if perr != nil {
			s.badFrame(perr)
			continue
		}
		switch f.Type {
		case typeHello:
			s.badFrame(badRequest("already joined: hello is only the first frame"))
		case typePing:
			s.send(encodePong(f.T, time.Now().UnixNano()))
		case typeAction:
			s.act(f)
		}
	}
}

// act pushes a well-formed action to the room. From here on every answer
// carries the action's cseq: ack, or reject.
func (s *session) act(f clientFrame) {
	if f.BadField != "" {
		s.reject(f.CSeq, sequencer.CodeBadRequest, f.BadField)
		return
	}
	if f.Kind == "" {
		s.reject(f.CSeq, sequencer.CodeBadRequest, "field kind: required")
		return
	}
	a := sequencer.Action{Player: s.player, CSeq: f.CSeq, Kind: f.Kind, Target: f.Target, Reply: s, Replaced: &s.replaced}
	var err error
	if f.CSeq <= s.resendUpTo && f.CSeq > s.lastResend && s.resendsLeft > 0 && (s.bucket == nil || s.bucket.allowResend()) {
		s.lastResend = f.CSeq
		s.resendsLeft--
		err = s.room.Resend(a)
	} else {
		if s.bucket != nil && !s.bucket.allow(time.Now()) {
			o := &s.srv.opts
			s.reject(f.CSeq, CodeRateLimited, fmt.Sprintf("more than %g actions/s (burst %d); slow down", o.RateLimit, o.RateBurst))
			return
		}
		err = s.room.Push(a)
	}
	if err != nil {
		s.reject(f.CSeq, sequencer.CodeOf(err), err.Error())
	}
}

func (s *session) reject(cseq uint64, code sequencer.Code, msg string) {
	s.srv.stats.rejected(code)
	s.send(encodeReject(sequencer.Reject{CSeq: cseq, Code: code, Message: msg}))
}

// badFrame answers a frame the server could not take with an error, and
// closes with 1008 once the connection has spent its bad-frame budget.
func (s *session) badFrame(perr *protoError) {
	s.send(encodeError(perr))
	if s.bad.allow(time.Now()) {
		return
	}
	if s.out.close(closing{code: ClosePolicy, text: "too many bad frames", flush: true}) {
		s.srv.stats.badFrames.Add(1)
		s.logger.Info().Msg("closed: too many bad frames")
	}
}

// send queues a frame for the write pump.
func (s *session) send(frame []byte) {
	if s.out.push(frame) == overflow {
		s.slowConsumer()
	}
}

func (s *session) slowConsumer() {
	s.srv.stats.slow.Add(1)
	s.srv.slowLog.Warn().Str("session", s.id).Str("room", s.roomName).Str("player", s.player).
		Msg("slow consumer: outbox full, closing with 4000")
}

// Subscriber and Replier: called from the room loop, never blocking.

// Publish queues the room's event frames as they are.
func (s *session) Publish(events [][]byte) bool {
	if s.out.pushAll(events) == overflow {
		s.slowConsumer()
		return false
	}
	return true
}

// Dropped closes the session: the room will send it nothing more.
func (s *session) Dropped(reason error) {
	switch {
	case errors.Is(reason, sequencer.ErrSlow):
		// Publish returned false and closed the outbox with 4000.
	case errors.Is(reason, sequencer.ErrReplaced):
		s.replaced.Store(true)
		s.out.close(closing{code: CloseNormal, text: "replaced by a newer connection of the same player"})
	case errors.Is(reason, sequencer.ErrClosed):
		text := "room closed"
		if s.srv.closing.Load() {
			text = "server shutting down"
		}
		s.out.close(closing{code: CloseGoingAway, text: text, flush: true})
	case errors.Is(reason, queue.ErrLeaseLost), errors.Is(reason, queue.ErrFenced):
		// Another server has the room now (or will once the lease
		// expires): reconnect and be sent there.
		s.logger.Warn().Err(reason).Msg("room moved")
		s.out.close(closing{code: CloseRedirect, text: "room moved: reconnect with since", flush: true})
	default:
		s.logger.Warn().Err(reason).Msg("room stopped")
		s.out.close(closing{code: CloseTryLater, text: "room unavailable: reconnect with since", flush: true})
	}
}

// Acked queues the ack of an action that is durable.
func (s *session) Acked(a sequencer.Ack) { s.send(encodeAck(a)) }

// Rejected queues the reject of an action that got no seq.
func (s *session) Rejected(r sequencer.Reject) {
	s.srv.stats.rejected(r.Code)
	s.send(encodeReject(r))
}

// Write pump.

// writePump is the only writer once the session is live. Each wake-up
// takes every queued frame and writes them one frame per message under one
// write deadline; it pings every PingPeriod; it writes the close frame when
// the outbox is closed, after the queued frames if the close flushes.
func (s *session) writePump() {
	defer close(s.writeDone)
	o := &s.srv.opts
	ping := time.NewTicker(o.PingPeriod)
	defer ping.Stop()
	var spare [][]byte
	for {
		select {
		case <-s.readDone:
			return
		case <-ping.C:
			// WriteControl takes its own deadline; the next frame sets
			// writeDeadline on the connection again.
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(o.WriteWait)); err != nil {
				s.writeFailed(err)
				return
			}
		case <-s.out.notify:
			frames, c := s.out.take(spare)
			if err := s.writeFrames(frames); err != nil {
				s.writeFailed(err)
				return
			}
			clear(frames)
			spare = frames[:0]
			if c != nil {
				s.writeClose(c)
				return
			}
		}
	}
}

func (s *session) writeFrames(frames [][]byte) error {
	if len(frames) == 0 {
		return nil
	}
	// Moving the deadline costs a timer update in the poller, so it moves
	// only once a quarter of WriteWait has passed since it was set: every
	// write still has at least three quarters of WriteWait to complete.
	if now, wait := time.Now(), s.srv.opts.WriteWait; s.writeDeadline.Sub(now) < wait-wait/4 {
		s.writeDeadline = now.Add(wait)
		if err := s.conn.SetWriteDeadline(s.writeDeadline); err != nil {
			return err
		}
	}
	s.cork.cork()
	for _, f := range frames {
		if s.out.abort.Load() {
			break // closing without flushing: the close comes next
		}
		if err := s.conn.WriteMessage(websocket.TextMessage, f); err != nil {
			s.cork.uncork()
			return err
		}
	}
	return s.cork.uncork()
}

// writeClose sends the close frame and waits for the read pump to see the
// client's reply, or closeGrace.
func (s *session) writeClose(c *closing) {
	s.logger.Debug().Int("code", c.code).Str("reason", c.text).Msg("closing")
	err := s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, closeText(c.text)), time.Now().Add(s.srv.opts.WriteWait))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		s.writeFailed(err)
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-s.readDone:
	case <-t.C:
		s.conn.Close()
	}
}

// writeFailed ends the connection after a failed write: a timeout means a
// client too slow to take what it is sent.
func (s *session) writeFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.srv.stats.writeTimeouts.Add(1)
		s.srv.slowLog.Warn().Str("session", s.id).Str("room", s.roomName).Str("player", s.player).
			Msg("write timed out: closing")
	} else {
		s.logger.Debug().Err(err).Msg("write failed")
	}
	s.conn.Close()
}
