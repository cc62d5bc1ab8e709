package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// IdentityMode says how a purchase is tied to the app's user, as mobile-billing integrations do.
type IdentityMode string

const (
	// IdentityCustomer uses the Stripe customer ID as the app user ID.
	IdentityCustomer IdentityMode = "customer_id"
	// IdentityMetadata reads the app user ID from a metadata key: the subscription's, then the
	// Checkout session's (or its client_reference_id), then the customer's.
	IdentityMetadata IdentityMode = "metadata"
	// IdentityAnonymous gives every customer (or guest checkout) a stable anonymous ID.
	IdentityAnonymous IdentityMode = "anonymous"
)

// Identity configures app user IDs. Zero value: metadata key "app_user_id".
type Identity struct {
	Mode        IdentityMode
	MetadataKey string
}

// IdentityInput is what is known about a purchase.
type IdentityInput struct {
	Customer         string // "" for a guest checkout
	SubscriptionMeta map[string]string
	CustomerMeta     map[string]string
	Session          *CheckoutSessionRow // the Checkout session that made the purchase, if any
}

// AnonymousPrefix starts every anonymous app user ID.
const AnonymousPrefix = "$anon:"

// AppUserID is the purchase's app user ID. A purchase with nothing to go on gets a stable
// anonymous ID derived from its customer (or, for a guest, its Checkout session), so the same
// purchaser always gets the same ID and replays agree.
func (c Identity) AppUserID(in IdentityInput) string {
	key := c.MetadataKey
	if key == "" {
		key = "app_user_id"
	}
	switch c.Mode {
	case IdentityCustomer:
		if in.Customer != "" {
			return in.Customer
		}
	case IdentityAnonymous:
	default: // IdentityMetadata and the zero value
		if v := in.SubscriptionMeta[key]; v != "" {
			return v
		}
		if in.Session != nil {
			if v := in.Session.Metadata[key]; v != "" {
				return v
			}
			if in.Session.ClientReferenceID != "" {
				return in.Session.ClientReferenceID
			}
		}
		if v := in.CustomerMeta[key]; v != "" {
			return v
		}
	}
	basis := in.Customer
	if basis == "" && in.Session != nil {
		basis = in.Session.ID
	}
	if basis == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("ledger.anon/v1:" + basis))
	return AnonymousPrefix + hex.EncodeToString(sum[:12])
}

// Validate checks the configuration.
func (c Identity) Validate() error {
	switch c.Mode {
	case "", IdentityCustomer, IdentityMetadata, IdentityAnonymous:
		return nil
	}
	return fmt.Errorf("unknown identity mode %q (want customer_id, metadata or anonymous)", c.Mode)
}
