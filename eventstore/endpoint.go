package eventstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Endpoint is the Stripe webhook endpoint a delivery came to, known from the signing secret that
// verified it (package webhook). Stripe keeps one endpoint, with its own secret, per mode and per
// kind: the platform's own events, and Connect events of connected accounts. The zero value is
// no endpoint: an event not delivered by webhook (reconciliation, snapshots, imports), or a
// webhook appended before endpoints were told apart (migrations/013).
type Endpoint string

const (
	EndpointLive        Endpoint = "live"         // the platform's live-mode endpoint
	EndpointTest        Endpoint = "test"         // the platform's test-mode endpoint
	EndpointConnectLive Endpoint = "connect-live" // the live Connect endpoint (connect: true)
	EndpointConnectTest Endpoint = "connect-test" // the test Connect endpoint
	// EndpointUnstated is a platform endpoint whose mode the configuration does not say (the
	// legacy STRIPE_WEBHOOK_SECRET): the account check applies to it, the mode check cannot.
	EndpointUnstated Endpoint = "unstated"
)

// Endpoints are every endpoint, in the order the webhook handler tries their secrets.
var Endpoints = []Endpoint{EndpointLive, EndpointTest, EndpointConnectLive, EndpointConnectTest, EndpointUnstated}

// Why an event is held out of the read models: what it says disagrees with the endpoint it came
// to. They are stable tokens (ledger.events.hold_reason, the mismatch metric's reason label).
const (
	// HoldModeMismatch: livemode is not the endpoint's mode — a live event signed only by a test
	// secret (a misconfigured endpoint, or a leaked test secret used to inject "live" events).
	HoldModeMismatch = "mode_mismatch"
	// HoldAccountOnPlatform: an event of a connected account came to a platform endpoint.
	HoldAccountOnPlatform = "account_on_platform_endpoint"
	// HoldNoAccountOnConnect: a platform event (no account) came to a Connect endpoint.
	HoldNoAccountOnConnect = "no_account_on_connect_endpoint"
)

// Valid says whether e is one of Endpoints.
func (e Endpoint) Valid() bool {
	for _, x := range Endpoints {
		if e == x {
			return true
		}
	}
	return false
}

// Connect says whether e receives connected accounts' events.
func (e Endpoint) Connect() bool { return e == EndpointConnectLive || e == EndpointConnectTest }

// Mode is e's mode: live, and whether the configuration states it at all (not for unstated).
func (e Endpoint) Mode() (live, stated bool) {
	switch e {
	case EndpointLive, EndpointConnectLive:
		return true, true
	case EndpointTest, EndpointConnectTest:
		return false, true
	}
	return false, false
}

// HoldReason is why an event with these livemode and account fields, delivered to e, must be
// held, "" when it agrees with e. The mode is checked first: a live event on a test endpoint is
// the graver mismatch, whatever its account.
//
// The legacy unstated endpoint (STRIPE_WEBHOOK_SECRET) checks nothing: its secrets may be any
// endpoint's — live, test or Connect, as that variable always allowed — so neither its mode nor
// its kind is known.
func (e Endpoint) HoldReason(livemode bool, account string) string {
	if e == "" || e == EndpointUnstated {
		return ""
	}
	if live, stated := e.Mode(); stated && live != livemode {
		return HoldModeMismatch
	}
	switch {
	case e.Connect() && account == "":
		return HoldNoAccountOnConnect
	case !e.Connect() && account != "":
		return HoldAccountOnPlatform
	}
	return ""
}

// Held says whether the event is kept out of the read models now: it disagrees with its endpoint
// (HoldReason) and no operator has released it.
func (r *Record) Held() bool { return r.HoldReason != "" && !r.Released }

// Release lets a held event into the read models, in the caller's transaction (the one that
// then folds it). It answers whether the event was held until now; releasing an event that was
// released before, or never held, changes nothing and answers false. The release is recorded in
// ledger.event_releases, once, never changed: a replay folds the event from then on.
func Release(ctx context.Context, tx pgx.Tx, eventID string) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO ledger.event_releases (event_id)
		SELECT event_id FROM ledger.events WHERE event_id = $1 AND hold_reason IS NOT NULL
		ON CONFLICT (event_id) DO NOTHING`, eventID)
	if err != nil {
		return false, fmt.Errorf("could not release %s: %w", eventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Released is which of eventIDs an operator has released (Release).
func (s *Store) Released(ctx context.Context, eventIDs []string) ([]string, error) {
	rows, err := s.q.Query(ctx, `SELECT event_id FROM ledger.event_releases WHERE event_id = ANY($1)`, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("could not read the releases: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("could not read the releases: %w", err)
	}
	return ids, nil
}
