package main_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
)

// `ledger events list` filters the log and keeps log order; `show --raw` gives back the exact bytes
// appended; a missing event exits 1 and a bad flag 2.
func TestEventsCommands(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	evs := []domain.Event{chargeEvent(t, "evt_a", "100"), chargeEvent(t, "evt_b", "200"), chargeEvent(t, "evt_c", "300")}
	if _, err := eventstore.New(db.Pool).Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL}

	r := ledger(t, env, "events", "list")
	if r.code != 0 || strings.Index(r.stdout, "evt_a") > strings.Index(r.stdout, "evt_c") || !strings.Contains(r.stdout, "charge.succeeded") {
		t.Fatalf("list: %+v", r)
	}
	r = ledger(t, env, "events", "list", "--object", "ch_evt_b", "--json")
	var got []struct {
		EventID  string `json:"event_id"`
		Position int64  `json:"position"`
		Source   string `json:"source"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1 || got[0].EventID != "evt_b" || got[0].Position != 2 || got[0].Source != "import" {
		t.Fatalf("list --object: %v %+v", err, r)
	}
	if r := ledger(t, env, "events", "list", "--limit", "2", "--json"); !strings.Contains(r.stdout, "evt_b") || strings.Contains(r.stdout, "evt_a") {
		t.Fatalf("--limit keeps the latest: %+v", r)
	}
	if r := ledger(t, env, "events", "list", "--source", "reconcile", "--json"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("--source reconcile: %+v", r)
	}
	r = ledger(t, env, "events", "show", "evt_c", "--raw")
	if r.code != 0 || r.stdout != string(evs[2].Payload) {
		t.Fatalf("show --raw is not the appended bytes: %+v", r)
	}
	if r := ledger(t, env, "events", "show", "evt_c"); r.code != 0 || !strings.Contains(r.stdout, "position     3") {
		t.Fatalf("show: %+v", r)
	}
	// evt_c arrives again at another API version: show lists that rendering after the event.
	dahlia, err := domain.NewEvent([]byte(strings.Replace(string(evs[2].Payload), `"api_version":"2023-10-16"`, `"api_version":"2026-08-26.dahlia"`, 1)), domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := eventstore.New(db.Pool).Append(context.Background(), []domain.Event{dahlia}); err != nil || !res[0].Duplicate {
		t.Fatalf("%+v %v", res, err)
	}
	if r := ledger(t, env, "events", "show", "evt_c"); r.code != 0 || !strings.Contains(r.stdout, "also rendered at 2026-08-26.dahlia") {
		t.Fatalf("show with another rendering: %+v", r)
	}
	r = ledger(t, env, "events", "show", "evt_c", "--json")
	var shown struct {
		APIVersion string `json:"api_version"`
		Renderings []struct {
			APIVersion string          `json:"api_version"`
			Payload    json.RawMessage `json:"payload"`
		} `json:"renderings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown.APIVersion != "2023-10-16" || len(shown.Renderings) != 1 ||
		shown.Renderings[0].APIVersion != "2026-08-26.dahlia" || !strings.Contains(string(shown.Renderings[0].Payload), "dahlia") {
		t.Fatalf("show --json: %v %+v", err, r)
	}
	if r := ledger(t, env, "events", "show", "evt_missing"); r.code != 1 || !strings.Contains(r.stderr, "no event evt_missing") {
		t.Fatalf("show of a missing event: %+v", r)
	}
	for _, bad := range [][]string{{"events", "list", "--limit", "0"}, {"events", "list", "--source", "mail"}, {"events", "list", "--since", "yesterday"}, {"events", "show"}} {
		if r := ledger(t, env, bad...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: want exit 2 with a message, got %+v", bad, r)
		}
	}
}
