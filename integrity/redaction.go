package integrity

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/stripeledger/ledger/domain"
)

// Redaction records are signed with the checkpoint key. The database lets a stored payload be
// replaced under any ledger.redaction record that names it with the new payload's SHA-256
// (migrations/011_chain_v2.sql), and whoever can append to the log can append such a record:
// the database alone cannot tell an operator's erasure from a rewrite of history. The key that
// anchors checkpoints outside the database signs every record (domain.Redaction.SignedMessage),
// and VerifyCheckpoints, which holds the public keys, authenticates every record the walk meets.

// SignRedaction signs rec, to be recorded by the event eventID, with key: it sets rec.Key and
// rec.Signature.
func SignRedaction(key ed25519.PrivateKey, eventID string, rec *domain.Redaction) {
	rec.Key = KeyID(key.Public().(ed25519.PublicKey))
	rec.Signature = ""
	rec.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, rec.SignedMessage(eventID)))
}

// CheckRedaction authenticates the record of the event eventID with the one of pubs it names.
func CheckRedaction(eventID string, rec domain.Redaction, pubs ...ed25519.PublicKey) error {
	if rec.Signature == "" || rec.Key == "" {
		return errors.New("the redaction record is not signed: no checkpoint key authorised it")
	}
	var pub ed25519.PublicKey
	var given []string
	for _, p := range pubs {
		if KeyID(p) == rec.Key {
			pub = p
		}
		given = append(given, KeyID(p))
	}
	if pub == nil {
		return fmt.Errorf("the redaction record is signed by key %q, not by a given public key (%s)", rec.Key, strings.Join(given, ", "))
	}
	sig, err := base64.StdEncoding.DecodeString(rec.Signature)
	if err != nil || !ed25519.Verify(pub, rec.SignedMessage(eventID), sig) {
		return errors.New("the redaction record's signature does not match: the record was forged or altered")
	}
	return nil
}
