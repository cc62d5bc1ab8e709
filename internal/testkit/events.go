package testkit

import (
	"fmt"
	"strings"

	"github.com/stripeledger/ledger/domain"
)

// EventJSON returns a Stripe-shaped event of roughly size bytes (the padding sits in a metadata
// field of data.object, like the large payloads real invoices carry).
func EventJSON(id, typ, objectID string, created int64, size int) []byte {
	head := fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,`+
		`"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":%q,`+
		`"data":{"object":{"id":%q,"object":%q,"currency":"usd","amount":1999,"metadata":{"note":"`,
		id, created, typ, objectID, objectType(typ))
	tail := `"}}}}`
	pad := size - len(head) - len(tail)
	if pad < 0 {
		pad = 0
	}
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// Event builds an appendable event from EventJSON with the given source (webhook events get a
// placeholder signature header, as the store does not check it).
func Event(id, typ, objectID string, created int64, size int, source domain.Source) domain.Event {
	sig := ""
	if source == domain.SourceWebhook {
		sig = fmt.Sprintf("t=%d,v1=%064x", created, 0)
	}
	ev, err := domain.NewEvent(EventJSON(id, typ, objectID, created, size), source, sig)
	if err != nil {
		panic(fmt.Sprintf("testkit.Event: %v", err))
	}
	return ev
}

func objectType(typ string) string {
	switch {
	case strings.HasPrefix(typ, "customer.subscription."):
		return "subscription"
	case strings.HasPrefix(typ, "charge.dispute."):
		return "dispute"
	case strings.HasPrefix(typ, "charge.refund."):
		return "refund"
	}
	if i := strings.IndexByte(typ, '.'); i > 0 {
		return typ[:i]
	}
	return typ
}
