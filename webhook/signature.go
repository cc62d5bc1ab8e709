package webhook

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// header is a parsed Stripe-Signature header: "t=1700000000,v1=<hex>[,v1=<hex>][,v0=…]".
type header struct {
	timestamp time.Time
	v1        int // how many well-formed v1 signatures it carries
}

// Reasons a request is rejected before anything is stored. They label the rejected metric and
// appear in the JSON error, so they are stable tokens.
const (
	reasonMissingHeader = "missing_signature_header"
	reasonMalformed     = "malformed_signature_header"
	reasonTooOld        = "timestamp_too_old"
	reasonInFuture      = "timestamp_in_future"
	reasonBadSignature  = "no_valid_signature"
	reasonEmptyBody     = "empty_body"
	reasonTooLarge      = "body_too_large"
	reasonReadFailed    = "body_read_failed"
	reasonMethod        = "method_not_allowed"
	reasonNotAnEvent    = "not_an_event"
	reasonDatabase      = "database_unavailable"
	reasonInvalidEvent  = "invalid_event"
)

const (
	maxHeaderLength = 8 << 10
	hexSHA256Length = 64
	badTimestamp    = "t= is missing or not a Unix timestamp"
)

// parseHeader reads the header strictly enough to give a precise answer; stripe-go's own check
// (run afterwards) is what decides authenticity. v0 and unknown schemes are ignored, as Stripe
// documents.
func parseHeader(h string) (header, string) {
	if len(h) > maxHeaderLength {
		return header{}, "header longer than 8 KiB"
	}
	var out header
	var haveT bool
	for _, pair := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return header{}, "element without '=' (want t=…,v1=…)"
		}
		switch k {
		case "t":
			if haveT {
				return header{}, "more than one t="
			}
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil || sec <= 0 {
				return header{}, badTimestamp
			}
			out.timestamp, haveT = time.Unix(sec, 0), true
		case "v1":
			if len(v) != hexSHA256Length {
				continue // a scheme we cannot check, like v0: ignored
			}
			if _, err := hex.DecodeString(v); err != nil {
				continue
			}
			out.v1++
		}
	}
	if !haveT {
		return header{}, badTimestamp
	}
	if out.v1 == 0 {
		return header{}, "no v1 signature (v0 and other schemes are ignored)"
	}
	return out, ""
}
