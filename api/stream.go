package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripeledger/ledger/eventstore"
)

// The live stream: GET /api/v1/stream answers text/event-stream (Server-Sent Events), so the
// dashboard moves as events land instead of reloading on a timer.
//
// One Hub per process reads the log on behalf of every client: an append through the
// webhooks' Store wakes it (Store.Appended), a batch folded by the projection runner wakes it
// (Hub.Folded), and it then reads the events after the last one it sent, once, whatever the
// number of clients. Each client has a bounded buffer; a client that falls that far behind is
// dropped with a final "dropped" event (the browser reconnects and refreshes) rather than
// slowing the hub, and so never slows appends or the projection, which only ever signal it.
//
// The messages:
//
//	id: 1234                 (the event's log position; the browser's Last-Event-ID)
//	event: appended
//	data: {"position":1234,"event_id":"evt_…","type":"charge.succeeded","livemode":true,"account":null,
//	       "object_type":"charge","object_id":"ch_…","source":"webhook"}
//
//	event: folded            (the read models now include every event up to position: refresh)
//	data: {"position":1234}
//
//	event: ready             (first message: the position the stream starts after)
//	event: reset             (Last-Event-ID is further back than the hub replays: reload all)
//	event: dropped           (last message to a client that fell too far behind)
//	: heartbeat              (a comment every HeartbeatInterval, so proxies keep the stream open)

// HubConfig configures a Hub. Zero values take the documented defaults.
type HubConfig struct {
	// Store is the store the webhooks append through: its commits wake the hub. Required.
	Store *eventstore.Store
	// Heartbeat is how often an idle stream gets a comment line. Default 15 s.
	Heartbeat time.Duration
	// ClientBuffer is how many messages a client may fall behind before it is dropped.
	// Default 256.
	ClientBuffer int
	// Replay is the most events resent to a client reconnecting with Last-Event-ID; further
	// back, it gets "reset" instead. Default 1000.
	Replay int
	// WriteTimeout bounds one write to a client (a stalled connection ends). Default 10 s.
	WriteTimeout time.Duration
	// RetryInterval is the wait after the log could not be read. Default 1 s.
	RetryInterval time.Duration
	Logger        *slog.Logger
}

func (c *HubConfig) setDefaults() {
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.ClientBuffer <= 0 {
		c.ClientBuffer = 256
	}
	if c.Replay <= 0 {
		c.Replay = 1000
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *HubConfig) validate() error {
	if c.Store == nil {
		return errors.New("stream hub: no store")
	}
	return nil
}

// Hub fans the log out to the stream's clients. Run it; hand it to Config.Stream.
type Hub struct {
	cfg HubConfig

	mu      sync.Mutex
	clients map[*streamClient]struct{}
	closed  bool
	stale   bool  // events were appended while no client listened: sent is behind the head
	sent    int64 // the last position broadcast

	folded   atomic.Int64  // the newest position a folded batch reported
	wake     chan struct{} // cap 1: Folded and a new client nudge the hub
	shutdown chan struct{} // closed by Close
	once     sync.Once
}

type streamMessage struct {
	id    int64 // 0: no id line
	event string
	data  []byte
	// base, when set, is not sent: the hub's broadcasts go on from this position, and the
	// client reads the events before it that it has not been sent yet.
	base int64
}

type streamClient struct {
	ch   chan streamMessage
	gone chan struct{} // closed when the hub drops the client or closes
	why  string        // the reason gone was closed ("" for the hub's shutdown)
}

// NewHub makes a hub; Run starts it.
func NewHub(cfg HubConfig) (*Hub, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Hub{cfg: cfg, clients: map[*streamClient]struct{}{}, stale: true,
		wake: make(chan struct{}, 1), shutdown: make(chan struct{})}, nil
}

// Folded tells the hub the read models now include every event up to position. It never
// blocks: the projection runner calls it between batches (RunnerConfig.Folded).
func (h *Hub) Folded(position int64) {
	for {
		old := h.folded.Load()
		if position <= old || h.folded.CompareAndSwap(old, position) {
			break
		}
	}
	h.nudge()
}

func (h *Hub) nudge() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Close ends every stream and refuses new ones (serve calls it as the HTTP server shuts down,
// which would otherwise wait for the streams to end).
func (h *Hub) Close() {
	h.once.Do(func() {
		close(h.shutdown)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.closed = true
		for c := range h.clients {
			delete(h.clients, c)
			close(c.gone)
		}
	})
}

// Run reads and broadcasts until ctx ends, then closes the hub.
func (h *Hub) Run(ctx context.Context) error {
	defer h.Close()
	heartbeat := time.NewTicker(h.cfg.Heartbeat)
	defer heartbeat.Stop()
	var lastFolded int64
	for {
		woken := h.cfg.Store.Appended()
		if err := h.catchUp(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.cfg.Logger.Warn("stream: could not read the log; will try again", "error", err, "in", h.cfg.RetryInterval)
			select {
			case <-ctx.Done():
				return nil
			case <-h.shutdown:
				return nil
			case <-time.After(h.cfg.RetryInterval):
			}
			continue
		}
		// After the events it covers: the page refreshes once it has seen them.
		if f := h.folded.Load(); f > lastFolded {
			lastFolded = f
			data, _ := json.Marshal(map[string]int64{"position": f})
			h.broadcast(streamMessage{event: "folded", data: data})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.shutdown:
			return nil
		case <-woken:
		case <-h.wake:
		case <-heartbeat.C:
			h.broadcast(streamMessage{})
		}
	}
}

// catchUp broadcasts the events after the last one sent. With no client it reads nothing and
// only notes that it is behind; the next catch-up with a client starts from the head then, and
// tells the clients that position so that each reads what it missed before it (one read per
// client, once, instead of the hub reading the log while nobody listens).
func (h *Hub) catchUp(ctx context.Context) error {
	h.mu.Lock()
	listening, stale, after := len(h.clients) > 0, h.stale, h.sent
	if !listening {
		h.stale = true
	}
	h.mu.Unlock()
	if !listening {
		return nil
	}
	if stale {
		head, err := h.cfg.Store.Head(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.sent, h.stale = head.Position, false
		h.mu.Unlock()
		// A client that subscribed while the hub was behind may have missed events up to the
		// head just read: each reads its own gap up to it (streamMessage.base).
		h.broadcast(streamMessage{base: head.Position})
		return nil
	}
	const page = 500
	for {
		recs, err := h.cfg.Store.List(ctx, eventstore.Filter{AfterPosition: after, Limit: page})
		if err != nil {
			return err
		}
		for i := range recs {
			h.broadcast(appendedMessage(&recs[i]))
			after = recs[i].Position
		}
		h.mu.Lock()
		h.sent = after
		h.mu.Unlock()
		if len(recs) < page {
			return nil
		}
	}
}

// streamEvent is an appended event as the stream tells it: no payload, nothing personal.
type streamEvent struct {
	Position   int64   `json:"position"`
	EventID    string  `json:"event_id"`
	Type       string  `json:"type"`
	Livemode   bool    `json:"livemode"`
	Account    *string `json:"account"`
	ObjectType *string `json:"object_type"`
	ObjectID   *string `json:"object_id"`
	Source     string  `json:"source"`
}

func appendedMessage(r *eventstore.Record) streamMessage {
	data, _ := json.Marshal(streamEvent{Position: r.Position, EventID: r.ID, Type: r.Type, Livemode: r.Livemode,
		Account: nullable(r.Account), ObjectType: nullable(r.ObjectType), ObjectID: nullable(r.ObjectID), Source: string(r.Source)})
	return streamMessage{id: r.Position, event: "appended", data: data}
}

// broadcast queues m for every client, dropping those whose buffer is full: it never waits.
func (h *Hub) broadcast(m streamMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c.ch <- m:
		default:
			delete(h.clients, c)
			c.why = "too_slow"
			close(c.gone)
		}
	}
}

// subscribe adds a client; ok is false once the hub is closed.
func (h *Hub) subscribe() (c *streamClient, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	c = &streamClient{ch: make(chan streamMessage, h.cfg.ClientBuffer), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	h.nudge()
	return c, true
}

func (h *Hub) unsubscribe(c *streamClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.gone)
	}
}

// Clients is how many streams are open (for tests and metrics).
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// stream serves GET /api/v1/stream.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	h := a.cfg.Stream
	if h == nil {
		writeError(w, http.StatusServiceUnavailable, "stream_unavailable", "the live stream is off in this process; poll the API instead")
		return
	}
	for k := range r.URL.Query() {
		writeError(w, http.StatusBadRequest, "unknown_parameter", fmt.Sprintf("unknown parameter %q; the stream takes none (send Last-Event-ID to resume)", k))
		return
	}
	var resume int64 = -1
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		p, err := strconv.ParseInt(v, 10, 64)
		if err != nil || p < 0 {
			writeError(w, http.StatusBadRequest, "invalid_last_event_id", "Last-Event-ID must be a log position (a non-negative integer)")
			return
		}
		resume = p
	}
	c, ok := h.subscribe()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "stream_unavailable", "the server is shutting down")
		return
	}
	defer h.unsubscribe(c)
	// written is the last position this client has: Last-Event-ID's, else the head when it
	// subscribed. What it missed is read after subscribing, so anything committed since is in
	// both this read and the live messages, which skip what was already written.
	var written int64
	if resume < 0 {
		head, err := h.cfg.Store.Head(r.Context())
		if err != nil {
			a.fail(w, err)
			return
		}
		written = head.Position
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// The server's WriteTimeout would cut every stream after it; each write gets its own instead.
	write := func(m streamMessage) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		var b strings.Builder
		switch {
		case m.event == "":
			b.WriteString(": heartbeat\n\n")
		default:
			if m.id > 0 {
				fmt.Fprintf(&b, "id: %d\n", m.id)
			}
			fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", m.event, m.data)
		}
		if _, err := w.Write([]byte(b.String())); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// fill writes the events after written up to upTo (0: the head), or "reset" when there are
	// more than the hub replays.
	fill := func(upTo int64) bool {
		recs, err := h.cfg.Store.List(r.Context(), eventstore.Filter{AfterPosition: written, UpToPosition: upTo, Limit: h.cfg.Replay + 1})
		if err != nil {
			a.cfg.Logger.Warn("stream: could not read the events a client missed", "error", err)
			return write(streamMessage{event: "reset", data: []byte(`{"reason":"the events missed could not be read"}`)})
		}
		if len(recs) > h.cfg.Replay {
			written = recs[len(recs)-1].Position
			return write(streamMessage{event: "reset", data: []byte(`{"reason":"Last-Event-ID is too far back to replay"}`)})
		}
		for i := range recs {
			if !write(appendedMessage(&recs[i])) {
				return false
			}
			written = recs[i].Position
		}
		return true
	}
	if resume >= 0 {
		written = resume
		if !fill(0) {
			return
		}
	}
	if !write(streamMessage{event: "ready", data: fmt.Appendf(nil, `{"resumed_from":%d}`, max(resume, 0))}) {
		return
	}
	if _, err := w.Write([]byte("retry: 3000\n\n")); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			// Dropped (the page reconnects and refreshes) or the hub closed: say why, if it is
			// the client's slowness, and end.
			if c.why != "" {
				write(streamMessage{event: "dropped", data: fmt.Appendf(nil, `{"reason":%q}`, c.why)})
			}
			return
		case m := <-c.ch:
			if m.base > 0 {
				if m.base > written && !fill(m.base) {
					return
				}
				continue
			}
			if m.id > 0 && m.id <= written {
				continue
			}
			if !write(m) {
				return
			}
			if m.id > 0 {
				written = m.id
			}
		}
	}
}
