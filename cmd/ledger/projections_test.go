package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
)

func chargeEvent(t *testing.T, id, amount string) domain.Event {
	t.Helper()
	body := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":1780000000,"livemode":false,"type":"charge.succeeded",`+
		`"data":{"object":{"id":"ch_%s","object":"charge","amount":%s,"currency":"usd","status":"succeeded","created":1780000000}}}`, id, id, amount)
	e, err := domain.NewEvent(body, domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// replay, `projections status` and `projections retry` report a quarantined event with exit
// code 1 and say what to do; bad arguments exit 2 with a message.
func TestProjectionsCommands(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	if _, err := eventstore.New(db.Pool).Append(context.Background(),
		[]domain.Event{chargeEvent(t, "evt_ok", "500"), chargeEvent(t, "evt_bad", `"lots"`)}); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL}

	r := ledger(t, env, "replay")
	if r.code != 1 || !strings.Contains(r.stderr, "1 event(s) could not be folded") || !strings.Contains(r.stdout, "charges 1,") {
		t.Fatalf("replay: %+v", r)
	}
	r = ledger(t, env, "projections", "status")
	if r.code != 1 || !strings.Contains(r.stdout, "evt_bad") || !strings.Contains(r.stdout, "position     2 of 2") ||
		!strings.Contains(r.stderr, "ledger projections retry --all") {
		t.Fatalf("status: %+v", r)
	}
	r = ledger(t, env, "projections", "status", "--json")
	var st struct {
		Position   int64 `json:"position"`
		Quarantine []struct {
			EventID string `json:"event_id"`
			Error   string `json:"error"`
		} `json:"quarantine"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Position != 2 || len(st.Quarantine) != 1 || st.Quarantine[0].EventID != "evt_bad" {
		t.Fatalf("status --json: %v %+v", err, r)
	}
	for _, bad := range [][]string{
		{"projections", "retry"},
		{"projections", "retry", "--all", "evt_bad"},
		{"projections", "retry", "--all", "--identity", "psychic"},
		{"replay", "--projection", "nope"},
	} {
		if r := ledger(t, env, bad...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: want exit 2 with a message, got %+v", bad, r)
		}
	}
	if r := ledger(t, env, "projections", "retry", "evt_ok"); r.code != 1 || !strings.Contains(r.stderr, "not quarantined") {
		t.Fatalf("retry of an event not quarantined: %+v", r)
	}
	r = ledger(t, env, "projections", "retry", "--all")
	if r.code != 1 || !strings.Contains(r.stdout, "0 folded, 1 still quarantined") || !strings.Contains(r.stdout, "evt_bad") {
		t.Fatalf("retry --all: %+v", r)
	}
}
