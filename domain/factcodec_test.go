package domain_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/stripesim"
)

// Every fact of a simulated account reads back from its binary form as it was, and a truncated
// form is an error, never a wrong fact.
func TestFactBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 3, Customers: 40, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	var buf []byte
	var want []domain.Fact
	for _, ev := range sim.Events() {
		f, err := domain.DecodeFact(ev.Webhook)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, f)
		buf = f.AppendBinary(buf)
	}
	rest := buf
	for i := range want {
		got, r, err := domain.ReadFact(rest)
		if err != nil {
			t.Fatalf("fact %d: %v", i, err)
		}
		rest = r
		if got.EventID != want[i].EventID || got.Type != want[i].Type || got.Created != want[i].Created ||
			got.APIVersion != want[i].APIVersion || !bytes.Equal(got.ObjectRaw, want[i].ObjectRaw) || !reflect.DeepEqual(got.Prev, want[i].Prev) {
			t.Fatalf("fact %d read back as %+v, want %+v", i, got, want[i])
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left over", len(rest))
	}
	one := want[len(want)-1].AppendBinary(nil)
	for n := range len(one) {
		if _, _, err := domain.ReadFact(one[:n]); err == nil {
			t.Fatalf("a fact truncated to %d of %d bytes read without error", n, len(one))
		}
	}
}
