package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testsignal"
)

type recorded chan Record

func (r recorded) Record(_ context.Context, rec Record) { r <- rec }

// A request waiting for its turn at the hash checks gives up when its client goes away: it is
// audited as 499 and no hash is checked for it, so the clients still waiting are not kept behind
// work nobody will read.
func TestHashWaitEndsWithTheRequest(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	ts := newTokens([]entry{{Identity: Identity{Name: "a", Role: Read}, hash: counting{"tok_a", &n}}})
	for range cap(ts.sem) {
		ts.sem <- struct{}{} // every turn taken, as by a flood of guesses
	}
	audit := make(recorded, 1)
	g := &Guard{Tokens: ts, Audit: audit}
	arrived := make(chan struct{})
	h := g.Require("GET /x", Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler ran without a checked token")
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
	req.Header.Set("Authorization", "Bearer tok_a")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel() // the client goes away while its token waits
	if err := <-errc; err == nil {
		t.Fatal("the request was answered")
	}
	var rec Record
	select {
	case rec = <-audit:
	case <-time.After(testsignal.Timeout):
		t.Fatal("the request was never audited: it still waits for a turn at the hash checks")
	}
	if rec.Status != StatusClientClosedRequest || rec.Token != "" || n.Load() != 0 {
		t.Fatalf("audited %+v after %d hash checks", rec, n.Load())
	}
}
