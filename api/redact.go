package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/redaction"
)

// redactionRequest is POST /api/v1/redactions' body.
type redactionRequest struct {
	Customer string `json:"customer"`
	Reason   string `json:"reason"`
	// RequestedBy names the person asking, recorded with the redaction; default "api".
	RequestedBy string `json:"requested_by"`
}

// maxRedactionBody bounds the request body: three short strings.
const maxRedactionBody = 16 << 10

// redact serves POST /api/v1/redactions: erase a customer's personal data (package redaction).
// 201 with the summary when events were redacted; 200 when there was nothing left to redact;
// 400 for a body that is not the request; 404 when the log knows no such customer; 409 when an
// event in scope was edited behind the log's back; 503 when serve holds no checkpoint key, which
// signs every redaction's record.
func (a *API) redact(w http.ResponseWriter, r *http.Request) {
	if a.cfg.CheckpointKey == nil {
		writeError(w, http.StatusServiceUnavailable, "no_checkpoint_key",
			"redaction is off: a redaction's record is signed with the checkpoint key, and serve has none (set LEDGER_CHECKPOINT_KEY)")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)")
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRedactionBody))
	dec.DisallowUnknownFields()
	var body redactionRequest
	if err := dec.Decode(&body); err != nil {
		msg := "the body must be a JSON object {\"customer\": \"cus_…\", \"reason\": \"…\"}"
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			msg = "the body is larger than 16 KiB"
		case errors.As(err, &ute):
			msg = "field " + ute.Field + " must be a string"
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			msg = "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "; the fields are customer, reason, requested_by"
		}
		writeError(w, http.StatusBadRequest, "invalid_body", msg)
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "invalid_body", "the body must hold one JSON object and nothing after it")
		return
	}
	// Who asked is the token's name, which the audit log records too; requested_by, when given,
	// says on whose behalf (a ticket's requester), never instead of it.
	by := "api"
	if id, ok := auth.FromContext(r.Context()); ok && id.Name != "" {
		by = "token " + id.Name
	}
	if body.RequestedBy != "" {
		by = body.RequestedBy + " (" + by + ")"
	}
	sum, err := redaction.Run(r.Context(), a.pool, redaction.Request{Customer: body.Customer, Reason: body.Reason, By: by,
		MetadataKeys: redaction.MetadataKeysFromEnv(), Identity: a.cfg.Identity, Key: a.cfg.CheckpointKey})
	var ir *redaction.InvalidRequest
	var tampered *redaction.TamperedError
	switch {
	case errors.As(err, &ir):
		writeError(w, http.StatusBadRequest, "invalid_"+ir.Field, ir.Message)
	case errors.Is(err, redaction.ErrUnknownCustomer):
		writeError(w, http.StatusNotFound, "not_found", "the log has no event about customer "+body.Customer+"; nothing was changed")
	case errors.As(err, &tampered):
		a.cfg.Logger.Error("api: redaction refused: the log was edited", "position", tampered.Position, "event", tampered.EventID)
		writeError(w, http.StatusConflict, "log_tampered", tampered.Error()+"; nothing was changed")
	case err != nil:
		a.fail(w, err)
	case sum.Redacted == 0:
		writeJSON(w, http.StatusOK, sum)
	default:
		a.cfg.Logger.Info("api: customer redacted", "customer", sum.Customer, "events", sum.Redacted, "event", sum.EventID, "by", sum.By)
		writeJSON(w, http.StatusCreated, sum)
	}
}
