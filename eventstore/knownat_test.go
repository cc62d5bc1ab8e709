package eventstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
)

// PositionAt is the last position accepted at or before a time: 0 before the first event, the
// head after the last, and exactly the boundary between two acceptances.
func TestPositionAt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	base := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const n = 37
	for i := range n {
		e := ev(fmt.Sprintf("evt_at_%02d", i), fmt.Sprintf("cus_%d", i), domain.SourceWebhook)
		e.ReceivedAt = base.Add(time.Duration(i) * time.Second)
		if _, err := b.store.Append(ctx, []domain.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		at   time.Time
		want int64
	}{
		{base.Add(-time.Second), 0},
		{base, 1},
		{base.Add(500 * time.Millisecond), 1},
		{base.Add(17 * time.Second), 18},
		{base.Add(17*time.Second - time.Microsecond), 17},
		{base.Add(n * time.Second), n},
		{base.Add(time.Hour), n},
	} {
		got, err := b.store.PositionAt(ctx, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("PositionAt(%s) = %d, want %d", c.at.Format(time.RFC3339Nano), got, c.want)
		}
	}
}
