// Package query answers finance's questions from the read models: lists with filters and
// cursors, one object with the events that produced it, as-of answers folded from the log,
// metric series, the log's events and the dashboard's summary. The HTTP API (api/), `ledger
// query` and the dashboard all call it, so they accept the same parameters and give the same
// answers; the resources, their columns, types and filters come from the read models'
// declarations (projections.Models).
package query

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/projections"
)

// Config configures the queries.
type Config struct {
	// Identity is how app user IDs are found: as-of answers derive them with it. It must be
	// the runner's (LEDGER_IDENTITY).
	Identity domain.Identity
	// FX is the reporting currency and which day's rate converts a movement
	// (LEDGER_REPORTING_CURRENCY, LEDGER_FX_RATE_DATE; ParseFX reads them).
	FX FX
}

// Queries answers from one database.
type Queries struct {
	pool  *pgxpool.Pool
	store *eventstore.Store
	cfg   Config
}

// New makes the queries.
func New(pool *pgxpool.Pool, cfg Config) *Queries {
	return &Queries{pool: pool, store: eventstore.New(pool), cfg: cfg}
}

// BadRequest is a request the caller must change. Code is stable (for scripts); Message says
// what is accepted.
type BadRequest struct{ Code, Message string }

func (e *BadRequest) Error() string { return e.Message }

func badRequest(code, format string, args ...any) *BadRequest {
	return &BadRequest{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is an object or event the ledger does not hold.
var ErrNotFound = errors.New("not found")

// Resource is the read model served under a name (its table's).
func Resource(name string) (*projections.Model, bool) { return projections.ModelByTable(name) }

// ResourceNames are the names of every resource, in declaration order.
func ResourceNames() []string {
	out := make([]string, len(projections.Models))
	for i, m := range projections.Models {
		out[i] = m.Table
	}
	return out
}

// checkText refuses a value Postgres could not take as text (a NUL byte, or bytes that are not
// UTF-8): every value reaches SQL as a parameter, but Postgres refuses such a parameter
// outright, which would otherwise read as the database failing rather than the request.
func checkText(what, s string) error {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return nil
	}
	return badRequest("invalid_text", "%s holds a NUL byte or is not valid UTF-8", what)
}

// CheckValues refuses any parameter name or value Postgres could not take as text.
func CheckValues(v url.Values) error { return checkValues(v) }

// checkValues applies checkText to every parameter name and value.
func checkValues(v url.Values) error {
	for k, vs := range v {
		if err := checkText("a parameter name", k); err != nil {
			return err
		}
		for _, s := range vs {
			if err := checkText(fmt.Sprintf("parameter %q", k), s); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckID checks an object or event ID taken from a path.
func CheckID(id string) error { return checkText("the ID", id) }

// wantsCSV reads the format parameter: json, csv, or "" to let the caller decide (an HTTP
// Accept header).
func parseFormat(v url.Values) (csv bool, set bool, err error) {
	switch f := v.Get("format"); f {
	case "":
		return false, false, nil
	case "json":
		return false, true, nil
	case "csv":
		return true, true, nil
	default:
		return false, true, badRequest("invalid_format", "format is json or csv")
	}
}

func isCurrency(s string) bool { return len(s) == 3 && strings.ToLower(s) == s }
