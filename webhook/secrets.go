package webhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/stripeledger/ledger/eventstore"
)

// EndpointSecrets are the signing secrets of each Stripe endpoint the ledger receives from, each
// a list so a secret can be rolled (the old and the new verify during the roll). The secret that
// verifies a request says which endpoint it came to: the handler tries the endpoints in
// eventstore.Endpoints order (live, test, connect-live, connect-test, unstated), and each
// endpoint's secrets in the order given; the first that verifies wins. No secret may belong to
// two endpoints (Validate), so the order only matters for a header signed by several.
type EndpointSecrets struct {
	Live        []string // STRIPE_WEBHOOK_SECRET_LIVE
	Test        []string // STRIPE_WEBHOOK_SECRET_TEST
	ConnectLive []string // STRIPE_WEBHOOK_SECRET_CONNECT_LIVE
	ConnectTest []string // STRIPE_WEBHOOK_SECRET_CONNECT_TEST
	// Unstated is the legacy STRIPE_WEBHOOK_SECRET: secrets of endpoints whose mode and kind are
	// not said (live, test or Connect: the variable always took them all), so nothing arriving
	// through them is held.
	Unstated []string
}

// SecretVariables name each endpoint's environment variable.
var SecretVariables = map[eventstore.Endpoint]string{
	eventstore.EndpointLive:        "STRIPE_WEBHOOK_SECRET_LIVE",
	eventstore.EndpointTest:        "STRIPE_WEBHOOK_SECRET_TEST",
	eventstore.EndpointConnectLive: "STRIPE_WEBHOOK_SECRET_CONNECT_LIVE",
	eventstore.EndpointConnectTest: "STRIPE_WEBHOOK_SECRET_CONNECT_TEST",
	eventstore.EndpointUnstated:    "STRIPE_WEBHOOK_SECRET",
}

// Of is the list of endpoint e.
func (s *EndpointSecrets) Of(e eventstore.Endpoint) *[]string {
	switch e {
	case eventstore.EndpointLive:
		return &s.Live
	case eventstore.EndpointTest:
		return &s.Test
	case eventstore.EndpointConnectLive:
		return &s.ConnectLive
	case eventstore.EndpointConnectTest:
		return &s.ConnectTest
	case eventstore.EndpointUnstated:
		return &s.Unstated
	}
	panic("webhook: no endpoint " + string(e))
}

// All is every secret, in the handler's order.
func (s EndpointSecrets) All() []string {
	var out []string
	for _, e := range eventstore.Endpoints {
		out = append(out, *s.Of(e)...)
	}
	return out
}

// Stated says whether any endpoint of a stated mode has a secret (the legacy variable alone
// leaves the mode check off).
func (s EndpointSecrets) Stated() bool {
	return len(s.Live)+len(s.Test)+len(s.ConnectLive)+len(s.ConnectTest) > 0
}

// Validate refuses a configuration with no secret at all, or with one secret given for two
// endpoints: the secret is what tells the endpoints apart, so the same one on two could not say
// which a delivery came to. The error names the variables, never the secret.
func (s EndpointSecrets) Validate() error {
	if len(s.All()) == 0 {
		return errors.New("no webhook signing secret: set STRIPE_WEBHOOK_SECRET_LIVE, STRIPE_WEBHOOK_SECRET_TEST, " +
			"STRIPE_WEBHOOK_SECRET_CONNECT_LIVE and/or STRIPE_WEBHOOK_SECRET_CONNECT_TEST (or the legacy STRIPE_WEBHOOK_SECRET) " +
			"to the endpoint's signing secret (whsec_…), several comma-separated during a rotation")
	}
	owner := map[string]eventstore.Endpoint{}
	for _, e := range eventstore.Endpoints {
		for _, secret := range *s.Of(e) {
			if o, ok := owner[secret]; ok && o != e {
				return fmt.Errorf("the same signing secret is given in %s and %s: each Stripe endpoint has its own, and the secret is how the ledger tells which endpoint a webhook came to",
					SecretVariables[o], SecretVariables[e])
			}
			owner[secret] = e
		}
	}
	return nil
}

// LoadSecrets reads every endpoint's variable through getenv (os.Getenv) and validates them:
// what serve takes.
func LoadSecrets(getenv func(string) string) (EndpointSecrets, error) {
	s, err := ReadSecrets(getenv)
	if err != nil {
		return s, err
	}
	return s, s.Validate()
}

// ReadSecrets reads every endpoint's variable through getenv, none required: what a re-check of
// stored signatures takes (with STRIPE_WEBHOOK_SECRET_RETIRED beside them).
func ReadSecrets(getenv func(string) string) (EndpointSecrets, error) {
	var s EndpointSecrets
	for _, e := range eventstore.Endpoints {
		list, err := ParseSecretList(SecretVariables[e], getenv(SecretVariables[e]))
		if err != nil {
			return s, err
		}
		*s.Of(e) = list
	}
	return s, nil
}

// ParseSecretList splits a comma-separated list of whsec_ secrets, possibly empty (the retired
// ones). name is the variable it came from, for the error; errors never echo a secret.
func ParseSecretList(name, s string) ([]string, error) {
	var out []string
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.HasPrefix(part, "whsec_") {
			return nil, fmt.Errorf("%s entry %d does not start with whsec_", name, i+1)
		}
		out = append(out, part)
	}
	return out, nil
}
