package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
)

type sseMessage struct {
	id, event, data string
	comment         bool
}

// sseReader reads one Server-Sent Events message at a time from a response body.
type sseReader struct{ r *bufio.Reader }

func (s *sseReader) next(t *testing.T) sseMessage {
	t.Helper()
	var m sseMessage
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended: %v (message so far %+v)", err, m)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m.event != "" || m.comment {
				return m
			}
		case strings.HasPrefix(line, ":"):
			m.comment = true
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		}
	}
}

// nextEvent skips heartbeats.
func (s *sseReader) nextEvent(t *testing.T) sseMessage {
	t.Helper()
	for {
		if m := s.next(t); !m.comment {
			return m
		}
	}
}

type streamBundle struct {
	store *eventstore.Store
	hub   *api.Hub
	srv   *httptest.Server
}

func setupStream(t *testing.T, cfg api.HubConfig) *streamBundle {
	t.Helper()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	cfg.Store = store
	hub, err := api.NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hub.Run(ctx)
	}()
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("fin:read:tok_read"), Stream: hub}))
	t.Cleanup(func() {
		cancel()
		<-done // the hub closed every stream, so the server's Close does not wait for them
		srv.Close()
	})
	return &streamBundle{store: store, hub: hub, srv: srv}
}

func (b *streamBundle) open(t *testing.T, lastEventID string) (*sseReader, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.srv.URL+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer tok_read")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sseReader{r: bufio.NewReader(resp.Body)}, resp
}

func (b *streamBundle) append(t *testing.T, events ...domain.Event) []int64 {
	t.Helper()
	res, err := b.store.Append(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		out = append(out, r.Position)
	}
	return out
}

func charge(n int) domain.Event {
	return testkit.Event(fmt.Sprintf("evt_stream_%d", n), "charge.succeeded", fmt.Sprintf("ch_stream_%d", n), 1_700_000_000+int64(n), 0, domain.SourceImport)
}

// An append through the store reaches an open stream as an "appended" event whose id is its
// position, and a folded batch then as "folded": the order the dashboard relies on.
func TestStreamSendsEachAppendThenTheFoldedBatch(t *testing.T) {
	t.Parallel()
	b := setupStream(t, api.HubConfig{})
	sse, resp := b.open(t, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream answered %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if m := sse.nextEvent(t); m.event != "ready" {
		t.Fatalf("first message %+v, want ready", m)
	}
	pos := b.append(t, charge(1), charge(2))
	for i, want := range []string{"evt_stream_1", "evt_stream_2"} {
		m := sse.nextEvent(t)
		var ev struct {
			Position   int64   `json:"position"`
			EventID    string  `json:"event_id"`
			Type       string  `json:"type"`
			Livemode   bool    `json:"livemode"`
			Account    *string `json:"account"`
			ObjectType string  `json:"object_type"`
			ObjectID   string  `json:"object_id"`
			Source     string  `json:"source"`
		}
		if err := json.Unmarshal([]byte(m.data), &ev); err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if m.event != "appended" || m.id != strconv.FormatInt(pos[i], 10) || ev.EventID != want || ev.Position != pos[i] ||
			ev.Type != "charge.succeeded" || ev.ObjectType != "charge" || ev.ObjectID != fmt.Sprintf("ch_stream_%d", i+1) ||
			ev.Account != nil || ev.Source != "import" {
			t.Fatalf("message %d: %+v (%+v), want %s at %d", i, m, ev, want, pos[i])
		}
	}
	b.hub.Folded(pos[1])
	if m := sse.nextEvent(t); m.event != "folded" || m.data != fmt.Sprintf(`{"position":%d}`, pos[1]) || m.id != "" {
		t.Fatalf("after the fold: %+v", m)
	}
}

// A client reconnecting with Last-Event-ID gets what it missed first, once, then the live
// events; one too far back gets "reset".
func TestStreamResumesFromLastEventID(t *testing.T) {
	t.Parallel()
	b := setupStream(t, api.HubConfig{Replay: 3})
	pos := b.append(t, charge(1), charge(2), charge(3))
	sse, _ := b.open(t, strconv.FormatInt(pos[0], 10))
	for _, want := range pos[1:] {
		if m := sse.nextEvent(t); m.event != "appended" || m.id != strconv.FormatInt(want, 10) {
			t.Fatalf("replayed %+v, want position %d", m, want)
		}
	}
	if m := sse.nextEvent(t); m.event != "ready" {
		t.Fatalf("after the replay: %+v", m)
	}
	more := b.append(t, charge(4))
	if m := sse.nextEvent(t); m.event != "appended" || m.id != strconv.FormatInt(more[0], 10) {
		t.Fatalf("live after the replay: %+v, want position %d", m, more[0])
	}

	far, _ := b.open(t, "0") // four events back, the hub replays three
	if m := far.nextEvent(t); m.event != "reset" {
		t.Fatalf("from position 0: %+v, want reset", m)
	}
}

// Heartbeats keep an idle stream open; a bad Last-Event-ID and a parameter are refused, and
// without a token there is no stream.
func TestStreamHeartbeatsAndRefusals(t *testing.T) {
	t.Parallel()
	b := setupStream(t, api.HubConfig{Heartbeat: 20 * time.Millisecond})
	sse, _ := b.open(t, "")
	if m := sse.next(t); m.event != "ready" {
		t.Fatalf("first: %+v", m)
	}
	if m := sse.next(t); !m.comment {
		t.Fatalf("an idle stream sent %+v, want a heartbeat comment", m)
	}
	for _, c := range []struct {
		path, lastID, token string
		status              int
		code                string
	}{
		{"/api/v1/stream", "evt_1", "tok_read", 400, "invalid_last_event_id"},
		{"/api/v1/stream?livemode=true", "", "tok_read", 400, "unknown_parameter"},
		{"/api/v1/stream", "", "", 401, ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, b.srv.URL+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.lastID != "" {
			req.Header.Set("Last-Event-ID", c.lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.code != "" && body.Error.Code != c.code) {
			t.Errorf("%s (Last-Event-ID %q): %d %q, want %d %q", c.path, c.lastID, resp.StatusCode, body.Error.Code, c.status, c.code)
		}
	}
}

// Without a hub the route says the stream is off (the dashboard then polls).
func TestStreamOffAnswers503(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	srv := httptest.NewServer(api.New(db.Pool, api.Config{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream without a hub: %d", resp.StatusCode)
	}
}
