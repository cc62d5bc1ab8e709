package domain

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
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

// FirstSession is, of the Checkout sessions naming one subscription, the one the purchase came
// through: the earliest created, then the smallest ID. nil when there is none.
func FirstSession(sessions []CheckoutSessionRow) *CheckoutSessionRow {
	if len(sessions) == 0 {
		return nil
	}
	first := slices.MinFunc(sessions, func(a, b CheckoutSessionRow) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.ID, b.ID))
	})
	return &first
}

// AnonymousPrefix starts every anonymous app user ID.
const AnonymousPrefix = "$anon:"

// AppUserID is the purchase's app user ID. A purchase with nothing to go on gets a stable
// anonymous ID derived from its customer (or, for a guest, its Checkout session), so the same
// purchaser always gets the same ID and replays agree; nil only when there is neither.
func (c Identity) AppUserID(in IdentityInput) *string {
	id := c.appUserID(in)
	if id == "" {
		return nil
	}
	return &id
}

// Key is the metadata key app user IDs are read from (in the metadata mode).
func (c Identity) Key() string {
	if c.MetadataKey == "" {
		return "app_user_id"
	}
	return c.MetadataKey
}

func (c Identity) appUserID(in IdentityInput) string {
	key := c.Key()
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
			if ref := Deref(in.Session.ClientReferenceID); ref != "" {
				return ref
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
