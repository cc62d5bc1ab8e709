package webhook_test

import (
	"slices"
	"testing"

	"github.com/stripeledger/ledger/webhook"
)

func TestParseSecretList(t *testing.T) {
	got, err := webhook.ParseSecretList("X", " whsec_a, ,whsec_b ")
	if err != nil || !slices.Equal(got, []string{"whsec_a", "whsec_b"}) {
		t.Fatalf("%v %v", got, err)
	}
	_, err = webhook.ParseSecretList("STRIPE_WEBHOOK_SECRET_RETIRED", "whsec_a,sk_live_secretvalue")
	if err == nil || err.Error() != "STRIPE_WEBHOOK_SECRET_RETIRED entry 2 does not start with whsec_" {
		t.Fatalf("bad entry: %v", err)
	}
}
