package loadtest

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Backoff between connection attempts (up to Config.BackoffMax) and
// after rejects.
const (
	backoffMin       = 50 * time.Millisecond
	rejectPauseMin   = 10 * time.Millisecond
	rejectPauseMax   = time.Second
	unavailablePause = 250 * time.Millisecond
	// frameBatch is how many waiting frames the bot handles before it
	// looks at its timers again.
	frameBatch = 64
)

// shared is what every bot of a run reads and never writes.
type shared struct {
	cfg      *Config
	epoch    time.Time // ping times are counted from here
	seed     maphash.Seed
	dialer   *websocket.Dialer
	tokenExp time.Time
	v        *violations
	start    <-chan struct{} // closed when bots start acting
	stop     <-chan struct{} // closed when bots stop acting and drain
	settled  chan<- joinResult
}

// joinResult is what a bot tells Run: once, that it joined or cannot
// (final), and before that at most once why it is slow to join (a note:
// it keeps trying until Run starts without it).
type joinResult struct {
	err  error // nil: joined
	note bool  // still trying: err says why it has not joined yet
}

// bot is one player on one connection at a time. Its goroutine (loop)
// owns every field; see doc.go.
type bot struct {
	id     int
	player string
	kind   Scenario
	token  string
	sh     *shared
	room   *room
	led    *ledger
	st     *shard
	rng    *rand.Rand

	urlIdx   int       // URL to dial next, unless target is set
	target   string    // a redirect's URL, dialed next
	c        *conn     // nil while disconnected
	failures int       // connection attempts failed in a row
	redirect int       // redirects followed in a row, without a welcome
	retryAt  time.Time // no dial before this
	lostAt   time.Time // when the last live connection started ending
	fatal    error     // the bot cannot go on (refused join)
	told     bool      // final joinResult sent
	noted    bool      // a note on a slow join sent

	acting     bool
	draining   bool
	drainUntil time.Time
	interval   time.Duration // between actions; 0: as fast as acks allow
	nextAt     time.Time     // next scheduled action
	pauseUntil time.Time     // no action before this (after a reject)
	rejects    int           // rejects in a row
	nextPing   time.Time
	dropAt     time.Time // reconnect bots: next drop
	burstKey   uint64    // contested bots: the low-HP seq already burst on
	burstAt    time.Time // contested bots: holding back until then
	buf        []byte
}

func newBot(id int, sh *shared, rm *room, st *shard) *bot {
	cfg := sh.cfg
	player := cfg.playerName(id)
	b := &bot{
		id:     id,
		player: player,
		kind:   cfg.behaviour(id),
		token:  joinToken(cfg.Secret, player, rm.check.name, sh.tokenExp),
		sh:     sh,
		room:   rm,
		led:    newLedger(player, cfg.LowHP, rm.check, sh.v, st),
		st:     st,
		rng:    rand.New(rand.NewPCG(cfg.Seed, uint64(id))),
		urlIdx: id % len(cfg.URLs),
	}
	if cfg.Rate > 0 {
		b.interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	return b
}

// loop runs the bot until it is drained, cannot go on, or ctx ends.
func (b *bot) loop(ctx context.Context) {
	defer b.exit()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start, stop := b.sh.start, b.sh.stop
	for {
		now := time.Now()
		if b.finished(now) {
			return
		}
		b.step(ctx, now)
		var in <-chan inbound
		if b.c != nil {
			in = b.c.in
		}
		timer.Reset(b.wake(now).Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-start:
			start = nil
			b.begin(time.Now())
		case <-stop:
			stop = nil
			b.draining, b.drainUntil = true, time.Now().Add(b.sh.cfg.Drain)
		case m, ok := <-in:
			b.frames(m, ok, in)
		case <-timer.C:
		}
	}
}

// frames handles m and up to frameBatch more frames that are waiting. ok
// false means the read pump has ended.
func (b *bot) frames(m inbound, ok bool, in <-chan inbound) {
	for n := 0; ; n++ {
		if !ok {
			b.ended(time.Now())
			return
		}
		b.handle(&m)
		if n == frameBatch {
			return
		}
		select {
		case m, ok = <-in:
		default:
			return
		}
	}
}

// finished reports whether the bot is done: drained (every action
// answered and checked) or out of time, or refused.
func (b *bot) finished(now time.Time) bool {
	switch {
	case b.fatal != nil:
		return true
	case !b.draining:
		return false
	case now.After(b.drainUntil):
		return true
	default:
		return b.led.settled()
	}
}

// begin starts acting: schedules start at a random point of their first
// period, so bots do not act in lockstep.
func (b *bot) begin(now time.Time) {
	cfg := b.sh.cfg
	b.acting = true
	b.nextAt = now.Add(time.Duration(b.rng.Float64() * float64(b.interval)))
	if b.kind == ScenarioReconnect {
		b.dropAt = now.Add(b.expDuration(cfg.DropEvery))
	}
}

// expDuration draws an exponential duration of the given mean, kept within
// [mean/10, 5·mean].
func (b *bot) expDuration(mean time.Duration) time.Duration {
	d := time.Duration(-math.Log(1-b.rng.Float64()) * float64(mean))
	return min(max(d, mean/10), 5*mean)
}

// step does what is due at now: connect, give up on a join, cut a close,
// ping, drop, act.
func (b *bot) step(ctx context.Context, now time.Time) {
	c := b.c
	switch {
	case c == nil:
		if !now.Before(b.retryAt) {
			b.connect(ctx, now)
		}
		return
	case c.closing:
		if !c.cutAt.IsZero() && !now.Before(c.cutAt) {
			c.cut()
		}
		return
	case !c.live:
		if now.Sub(c.opened) > joinTimeout {
			c.close(endJoinTimeout, now, false)
		}
		return
	}
	if !now.Before(b.nextPing) {
		b.buf = appendPing(b.buf[:0], now.Sub(b.sh.epoch).Nanoseconds())
		b.nextPing = now.Add(b.sh.cfg.PingEvery)
		if !c.write(b.buf, now) {
			return
		}
	}
	if b.kind == ScenarioReconnect && b.acting && !b.draining && !now.Before(b.dropAt) {
		b.drop(now)
		return
	}
	b.act(now)
}

// dropMidFlight is how many actions a reconnect bot sends just before it
// cuts its socket, so that resends meet actions the server may or may not
// have read.
const dropMidFlight = 3

// drop ends the connection on purpose, one of three ways: a clean close,
// a cut socket, or a cut right after sending actions.
func (b *bot) drop(now time.Time) {
	b.dropAt = now.Add(b.expDuration(b.sh.cfg.DropEvery))
	switch b.rng.IntN(3) {
	case 0:
		b.c.close(endDrop, now, true)
	case 1:
		b.c.close(endDrop, now, false)
	default:
		if !now.Before(b.pauseUntil) {
			b.sendN(min(dropMidFlight, b.sh.cfg.Window-b.led.inFlight()), now)
		}
		if b.c != nil {
			b.c.close(endDrop, now, false)
		}
	}
}

// act sends the actions due at now.
func (b *bot) act(now time.Time) {
	cfg := b.sh.cfg
	if !b.acting || b.draining || now.Before(b.pauseUntil) {
		return
	}
	room := cfg.Window - b.led.inFlight()
	if b.kind == ScenarioContested && b.contest(now, room) {
		return
	}
	if b.interval == 0 {
		b.sendN(room, now)
		return
	}
	n := 0
	for n < room && !now.Before(b.nextAt) {
		n++
		b.nextAt = b.nextAt.Add(b.interval)
	}
	if now.Sub(b.nextAt) > b.interval {
		b.nextAt = now // held up by the window: skip what was missed
	}
	b.sendN(n, now)
}

// contest holds back while Baron's HP is low and this life's burst is
// still to come, and bursts when the room's burst time comes. It reports
// whether the bot is holding back (or just burst).
func (b *bot) contest(now time.Time, room int) bool {
	low := b.led.lowSince
	if low == 0 || !b.led.alive || low == b.burstKey {
		b.burstAt = time.Time{}
		return false
	}
	if b.burstAt.IsZero() {
		b.burstAt = b.room.burstAt(low, now.Add(b.sh.cfg.HoldBack))
	}
	if now.Before(b.burstAt) || room <= 0 {
		return true // an answer makes room for the burst
	}
	b.burstKey, b.burstAt = low, time.Time{}
	b.sendN(min(b.sh.cfg.Burst, room), now)
	return true
}

func (b *bot) sendN(n int, now time.Time) {
	for range n {
		if b.c == nil || b.c.closing {
			return
		}
		cseq := b.led.send(now)
		b.buf = appendAction(b.buf[:0], cseq)
		b.c.write(b.buf, now)
	}
}

// wake returns when step has something to do, if no frame comes first.
func (b *bot) wake(now time.Time) time.Time {
	w := now.Add(time.Hour)
	at := func(t time.Time) {
		if t.Before(w) {
			w = t
		}
	}
	if b.draining {
		at(b.drainUntil)
	}
	c := b.c
	switch {
	case c == nil:
		at(b.retryAt)
		return w
	case c.closing:
		if !c.cutAt.IsZero() {
			at(c.cutAt)
		}
		return w
	case !c.live:
		at(c.opened.Add(joinTimeout))
		return w
	}
	at(b.nextPing)
	if !b.acting || b.draining {
		return w
	}
	if b.kind == ScenarioReconnect {
		at(b.dropAt)
	}
	if now.Before(b.pauseUntil) {
		at(b.pauseUntil)
		return w
	}
	if b.led.inFlight() >= b.sh.cfg.Window {
		return w // an answer wakes the bot
	}
	switch {
	case !b.burstAt.IsZero():
		at(b.burstAt)
	case b.interval > 0:
		at(b.nextAt)
	default:
		at(now)
	}
	return w
}

// connect dials the next server and sends the hello; the welcome comes
// through the read pump.
func (b *bot) connect(ctx context.Context, now time.Time) {
	cfg := b.sh.cfg
	url := b.target
	if url == "" {
		url = cfg.URLs[b.urlIdx]
	}
	b.target = ""
	dctx, cancel := context.WithTimeout(ctx, min(dialTimeout, cfg.ReadTimeout))
	ws, _, err := b.sh.dialer.DialContext(dctx, url, nil)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			b.st.countError("dial")
			b.retry(time.Now(), true, fmt.Errorf("dial %s: %w", url, err))
		}
		return
	}
	ws.SetReadLimit(maxFrameSize)
	c := &conn{ws: ws, url: url, since: b.led.lastSeq, opened: now, in: make(chan inbound, inboundQueue)}
	go c.readPump(b.sh.seed, cfg.ReadTimeout, cfg.Observer != nil) // the bot waits for it to end (ended, exit)
	b.c = c
	c.write(encodeHello(b.room.check.name, b.token, c.since), now)
}

// retry schedules the next connection attempt after a failed one, on the
// next URL when next is set.
func (b *bot) retry(now time.Time, next bool, why error) {
	if next {
		b.urlIdx = (b.urlIdx + 1) % len(b.sh.cfg.URLs)
	}
	b.failures++
	b.retryAt = now.Add(b.backoff(b.failures))
	if !b.told && !b.noted && why != nil && b.failures >= 3 {
		// Keep trying, but let Run know why this bot is slow to join.
		b.noted = true
		b.sh.settled <- joinResult{err: why, note: true}
	}
}

// backoff is the wait before the next attempt after n in a row failed,
// doubling up to Config.BackoffMax, with jitter.
func (b *bot) backoff(n int) time.Duration {
	d := min(backoffMin<<min(n, 16), b.sh.cfg.BackoffMax)
	return time.Duration(float64(d) * (0.5 + b.rng.Float64()))
}

func (b *bot) tell(err error) {
	if b.told {
		return
	}
	b.told = true
	b.sh.settled <- joinResult{err: err}
}

// handle acts on one frame of the current connection.
func (b *bot) handle(m *inbound) {
	c, f := b.c, &m.f
	if m.err != nil {
		b.sh.v.add(vProtocol, "%s: undecodable frame from %s: %v", b.player, c.url, m.err)
		return
	}
	switch f.Type {
	case frameWelcome:
		b.welcome(f, m.recv)
	case frameEvent:
		if obs := b.sh.cfg.Observer; obs != nil {
			obs.Event(b.room.check.name, b.player, f.Seq, m.raw)
		}
		b.led.event(f, m.hash, m.recv)
	case frameAck:
		if obs := b.sh.cfg.Observer; obs != nil {
			obs.Acked(b.room.check.name, b.player, f.CSeq, f.Seq, f.Dup)
		}
		b.rejects = 0
		b.led.ack(f, m.recv)
	case frameReject:
		b.led.reject(f)
		b.st.countError("reject." + f.Code)
		switch f.Code {
		case codeBusy, codeRateLimited:
			b.rejects++
			b.pauseUntil = m.recv.Add(min(rejectPauseMin<<min(b.rejects, 16), rejectPauseMax))
		case codeUnavailable:
			b.pauseUntil = m.recv.Add(unavailablePause)
		}
	case frameError:
		b.st.countError("error." + f.Code)
		if !c.live {
			c.errCode, c.errMsg = f.Code, f.Message
		}
	case frameRedirect:
		if err := checkURL(f.URL); err != nil {
			b.sh.v.add(vProtocol, "%s: redirect from %s: %v", b.player, c.url, err)
			return
		}
		c.redirect = f.URL
	case framePong:
		if f.T > 0 {
			b.st.record(metricRTT, m.recv.Sub(b.sh.epoch.Add(time.Duration(f.T))))
		}
	default:
		b.st.countError("frame." + f.Type)
	}
}

func (b *bot) welcome(f *serverFrame, now time.Time) {
	c := b.c
	b.led.welcome(f, c.since)
	c.live = true
	b.failures, b.redirect = 0, 0
	if !b.lostAt.IsZero() {
		b.st.record(metricReconnect, now.Sub(b.lostAt))
		b.st.add(cReconnects, 1)
		b.lostAt = time.Time{}
	}
	b.tell(nil)
	b.nextPing = now.Add(time.Duration(b.rng.Float64() * float64(b.sh.cfg.PingEvery)))
	for _, cseq := range b.led.resend() {
		b.buf = appendAction(b.buf[:0], cseq)
		if !c.write(b.buf, now) {
			return
		}
	}
}

// ended takes the end of the current connection: its read pump is done
// and every frame it read has been handled.
func (b *bot) ended(now time.Time) {
	c := b.c
	b.c = nil
	b.led.disconnected()
	if c.live {
		b.lostAt = now
		if c.closing {
			b.lostAt = c.closingAt
		}
	}
	code := closeCode(c.err)
	switch {
	case c.reason == endExit:
	case c.reason == endDrop:
		b.retryAt = now
	case c.reason == endJoinTimeout:
		b.st.countError("join_timeout")
		b.retry(now, true, fmt.Errorf("%s: no welcome within %v", c.url, joinTimeout))
	case c.reason == endWrite:
		b.st.countError("conn_lost")
		b.retry(now, true, nil)
	case c.redirect != "":
		// The first redirect is followed at once; more in a row, with no
		// welcome between (servers that disagree on the owner for a
		// moment, or one that redirects to itself), back off as failed
		// dials do.
		b.st.countError("redirect")
		b.target, b.retryAt = c.redirect, now
		if b.redirect++; b.redirect > 1 {
			b.retryAt = now.Add(b.backoff(b.redirect - 1))
		}
	case !c.live && (c.errCode == "unauthorized" || c.errCode == "bad_request"):
		if c.errCode == "bad_request" && c.since > 0 && strings.Contains(c.errMsg, "since") {
			b.led.refusedSince(c.since, c.errMsg)
		}
		b.fatal = fmt.Errorf("%s refused the join: %s: %s", c.url, c.errCode, c.errMsg)
		b.tell(b.fatal)
	case code == 0:
		b.st.countError("conn_lost")
		b.retry(now, true, fmt.Errorf("%s: connection lost: %v", c.url, c.err))
	case code == 4000:
		// Too slow to take the room's events: resume with since at once.
		b.st.countError("close.4000")
		b.retryAt = now
	default:
		b.st.countError("close." + strconv.Itoa(code))
		why := fmt.Errorf("%s closed with %d %s", c.url, code, c.errCode)
		b.retry(now, code != websocket.CloseNormalClosure, why)
	}
}

// exit closes the connection (waiting at most closeWait for the server's
// reply), handles what still arrives, and counts what stayed unanswered.
func (b *bot) exit() {
	if c := b.c; c != nil {
		now := time.Now()
		c.close(endExit, now, true)
		cut := time.NewTimer(closeWait)
		for open := true; open; {
			select {
			case m, ok := <-c.in:
				if open = ok; ok {
					b.handle(&m)
				}
			case <-cut.C:
				c.cut()
			}
		}
		cut.Stop()
		b.c = nil
	}
	b.led.finish()
	if b.fatal == nil {
		b.tell(fmt.Errorf("%s: stopped before joining", b.player))
	}
}
