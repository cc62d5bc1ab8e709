package api

import (
	"testing"

	"github.com/stripeledger/ledger/eventstore"
)

// A client whose buffer is full is dropped, with the reason, by the broadcast that found it
// full: the broadcast itself never waits, so appends and the projection never wait for a slow
// browser. The other clients keep everything.
func TestSlowClientIsDroppedNotWaitedFor(t *testing.T) {
	h, err := NewHub(HubConfig{Store: eventstore.New(nil), ClientBuffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := h.subscribe()
	fast, _ := h.subscribe()
	for i := range 3 {
		h.broadcast(streamMessage{id: int64(i + 1), event: "appended", data: []byte(`{}`)})
		if i < 2 {
			<-fast.ch
		}
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the slow client was not dropped when its buffer overflowed")
	}
	if slow.why != "too_slow" || h.Clients() != 1 {
		t.Fatalf("dropped with %q, %d clients left", slow.why, h.Clients())
	}
	if m := <-fast.ch; m.id != 3 {
		t.Fatalf("the other client got %+v", m)
	}
	h.Close()
	select {
	case <-fast.gone:
	default:
		t.Fatal("Close left a stream open")
	}
	if _, ok := h.subscribe(); ok {
		t.Fatal("a closed hub took a new client")
	}
}
