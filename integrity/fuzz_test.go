package integrity_test

import (
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/integrity"
)

// The re-check must accept exactly what ingest accepted: stripe-go's webhook package, whatever
// the header looks like (rolls, v0, junk, odd timestamps).
func FuzzCheckerAgreesWithStripeGo(f *testing.F) {
	body := []byte(`{"id":"evt_1","object":"event"}`)
	good := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: secretNow, Timestamp: time.Unix(1700000000, 0)})
	other := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: secretOld, Timestamp: time.Unix(1700000000, 0)})
	f.Add(body, good.Header)
	f.Add(body, good.Header+","+other.Header[len("t=1700000000,"):])
	f.Add(body, "t=01700000000,"+good.Header[len("t=1700000000,"):])
	f.Add(body, "t=1,"+good.Header)
	f.Add(body, good.Header+",v0=abc")
	f.Add(body, good.Header+",x")
	f.Add(body, good.Header+",v1=a=b")
	f.Add(body, " "+good.Header)
	f.Add(body, "")
	f.Add([]byte("{}"), good.Header)
	secrets := []string{secretNow, secretOld}
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		_, got := integrity.CheckSignature(body, header, secrets)
		anyValid := false
		for i, s := range secrets {
			valid := stripewebhook.ValidatePayloadIgnoringTolerance(body, header, s) == nil
			anyValid = anyValid || valid
			if (got&(1<<i) != 0) != valid {
				t.Fatalf("secret %d: the checker matched %v, stripe-go %v; header %q", i, got&(1<<i) != 0, valid, header)
			}
		}
		if anyValid != (got != 0) {
			t.Fatalf("stripe-go valid %v, the checker matched %b; header %q", anyValid, got, header)
		}
	})
}
