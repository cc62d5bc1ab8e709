package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/projections"
)

// A sweep, every SweepInterval under the runner's lease, does what the tail cannot:
//   - ledger-side findings (source: ledger rules) are read from the tables that record them —
//     reconciliation runs (missing events, drift, failures, endpoint problems), the projection
//     quarantine, the live projection's checkpoint — and keyed ledger:… in the outbox, so each
//     fires once however often it is read; a rule fires only for findings recorded after it was
//     first seen;
//   - held events released since the last sweep are matched as if they had just arrived;
//   - thin events (v1.*, from an event destination) whose object the thin fetcher has fetched
//     since the last sweep are matched as the Stripe event they announce (see thinResolved);
//   - digest rows whose period has ended are gathered into one message per rule, channel and
//     period: a digest row (event_id digest:RULE:CHANNEL:PERIOD:FIRST) is added, and its members
//     are marked digested with digest_of naming it, in one transaction.

// sweepOverlap is how far back each sweep looks past the previous one, so that a finding whose
// transaction committed just after the previous sweep read (with a timestamp before it) is not
// missed. Rows are keyed, so reading one twice adds nothing.
const sweepOverlap = 5 * time.Minute

// finding is one ledger-side fact.
type finding struct {
	kind, key, detail string
	at                time.Time
	lag               time.Duration // projection.lag only
}

// Sweep looks at the ledger-side sources, released events and due digests once, and answers how
// many outbox rows it added. The runner calls it every SweepInterval; tests call it directly.
func (r *Runner) Sweep(ctx context.Context) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("could not begin a sweep: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	seen, err := registerRules(ctx, tx, r.cfg.Config)
	if err != nil {
		return 0, err
	}
	var dbNow time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&dbNow); err != nil {
		return 0, fmt.Errorf("could not read the time: %w", err)
	}
	since := r.sweptTo.Add(-sweepOverlap)
	if r.sweptTo.IsZero() {
		since = time.Time{}
		for _, s := range seen {
			if since.IsZero() || s.FirstSeenAt.Before(since) {
				since = s.FirstSeenAt
			}
		}
	}
	added := 0
	n, err := r.ledgerSide(ctx, tx, seen, since)
	if err != nil {
		return 0, err
	}
	added += n
	if n, err = r.released(ctx, tx, seen, since); err != nil {
		return 0, err
	}
	added += n
	thinNow := r.cfg.Clock.Now()
	if n, err = r.thinResolved(ctx, tx, seen); err != nil {
		return 0, err
	}
	added += n
	if n, err = r.flushDigests(ctx, tx); err != nil {
		return 0, err
	}
	added += n
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("could not commit a sweep: %w", err)
	}
	r.sweptTo, r.thinSweptTo = dbNow, thinNow
	r.Signals.Swept.Signal(added)
	return added, nil
}

// ledgerSide matches the findings recorded since then against the ledger-side rules.
func (r *Runner) ledgerSide(ctx context.Context, tx pgx.Tx, seen map[string]RuleSeen, since time.Time) (int, error) {
	var rules []*Rule
	for _, rule := range r.cfg.Config.Rules {
		if rule.Source == SourceLedger {
			rules = append(rules, rule)
		}
	}
	if len(rules) == 0 {
		return 0, nil
	}
	found, err := findings(ctx, tx, since)
	if err != nil {
		return 0, err
	}
	var out outboxRows
	now := r.cfg.Clock.Now()
	for _, fd := range found {
		f := Fields{"type": fd.kind, "id": fd.key, "source": "ledger", "created": fd.at.UTC().Format(time.RFC3339),
			"detail": fd.detail, "late": false, "backfill": false, "livemode": nil}
		for _, rule := range rules {
			s, ok := seen[rule.Name]
			if !ok || fd.at.Before(s.FirstSeenAt) || !rule.Matches(f, nil) {
				continue
			}
			if fd.kind == KindProjectionLag && fd.lag < rule.LagOver {
				continue
			}
			if err := out.add(rule, fd.key, nil, fd.at, f, now, false, false); err != nil {
				return 0, err
			}
		}
	}
	return out.insert(ctx, tx)
}

// findings reads the ledger-side facts recorded from since on.
func findings(ctx context.Context, tx pgx.Tx, since time.Time) ([]finding, error) {
	var out []finding
	// Reconciliation runs that ended: one finding per kind a run shows.
	rows, err := tx.Query(ctx, `SELECT id, job, status, missing_found, repaired, drift::text, findings::text, error, finished_at
		FROM ledger.reconcile_runs WHERE finished_at >= $1 AND status <> 'running' ORDER BY id`, since)
	if err != nil {
		return nil, fmt.Errorf("could not read reconciliation runs: %w", err)
	}
	var (
		id                int64
		job, status, msg  string
		missing, repaired int
		drift, problems   string
		at                time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &job, &status, &missing, &repaired, &drift, &problems, &msg, &at}, func() error {
		key := func(kind string) string { return fmt.Sprintf("ledger:reconcile_run:%d:%s", id, kind) }
		if status == "failed" || status == "partial" {
			d := fmt.Sprintf("reconciliation run %d (%s) %s", id, job, status)
			if msg != "" {
				d += ": " + msg
			}
			out = append(out, finding{kind: KindReconcileFailed, key: key("failed"), detail: d, at: at})
		}
		if (job == "events" || job == "events-fast") && missing > 0 {
			out = append(out, finding{kind: KindReconcileMissing, key: key("missing"), at: at,
				detail: fmt.Sprintf("reconciliation run %d (%s) found %d events missing from the log and appended %d", id, job, missing, repaired)})
		}
		if job == "objects" && drift != "{}" {
			out = append(out, finding{kind: KindReconcileDrift, key: key("drift"), at: at,
				detail: fmt.Sprintf("reconciliation run %d (objects) found drift: %s", id, driftSummary(drift))})
		}
		if job == "endpoints" && problems != "[]" {
			out = append(out, finding{kind: KindEndpointProblem, key: key("endpoints"), at: at,
				detail: fmt.Sprintf("reconciliation run %d (endpoints): %s", id, endpointSummary(problems))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("could not read reconciliation runs: %w", err)
	}
	// Quarantined and held events still kept out of the read models.
	rows, err = tx.Query(ctx, `SELECT projection, event_id, event_type, error, coalesce(hold_reason, ''), quarantined_at
		FROM ledger.projection_quarantine WHERE quarantined_at >= $1 AND resolved_at IS NULL ORDER BY quarantined_at`, since)
	if err != nil {
		return nil, fmt.Errorf("could not read the quarantine: %w", err)
	}
	var projection, eventID, eventType, qerr, hold string
	_, err = pgx.ForEachRow(rows, []any{&projection, &eventID, &eventType, &qerr, &hold, &at}, func() error {
		d := fmt.Sprintf("%s %s is kept out of the read models (%s): %s", eventType, eventID, projection, qerr)
		if hold != "" {
			d = fmt.Sprintf("%s %s is held (%s): %s", eventType, eventID, hold, qerr)
		}
		out = append(out, finding{kind: KindEventQuarantined, key: "ledger:quarantine:" + projection + ":" + eventID, detail: d, at: at})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("could not read the quarantine: %w", err)
	}
	// The live projection's lag: how long the first event it has not folded has waited. Keyed by
	// the checkpoint's position, so a projection stuck at one position fires once.
	var checkpoint, head int64
	err = tx.QueryRow(ctx, `SELECT coalesce(s.position, 0), h.position, now()
		FROM ledger.log_head h LEFT JOIN ledger.projection_state s ON s.name = $1`, projections.StateName).Scan(&checkpoint, &head, &at)
	if err != nil {
		return nil, fmt.Errorf("could not read the projection's lag: %w", err)
	}
	var waiting *time.Duration
	if head > checkpoint {
		received, err := eventstore.On(tx).ReceivedAt(ctx, checkpoint+1)
		if err != nil {
			return nil, fmt.Errorf("could not read the projection's lag: %w", err)
		}
		if !received.IsZero() {
			w := at.Sub(received)
			waiting = &w
		}
	}
	if waiting != nil {
		out = append(out, finding{kind: KindProjectionLag, key: fmt.Sprintf("ledger:projection_lag:%d", checkpoint), lag: *waiting,
			at:     at,
			detail: fmt.Sprintf("the read models are %d events and %s behind the log (at position %d of %d)", head-checkpoint, waiting.Round(time.Second), checkpoint, head)})
	}
	return out, nil
}

func driftSummary(js string) string {
	var m map[string]int
	if json.Unmarshal([]byte(js), &m) != nil {
		return "see the run"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// endpointSummary lists the endpoints job's problems (reconcile.EndpointProblem as stored).
func endpointSummary(js string) string {
	var ps []struct {
		Endpoint string `json:"endpoint"`
		Livemode bool   `json:"livemode"`
		Problem  string `json:"problem"`
	}
	if json.Unmarshal([]byte(js), &ps) != nil || len(ps) == 0 {
		return "problems found; see the run"
	}
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		ep := p.Endpoint
		if ep == "" {
			ep = "no endpoint"
		}
		mode := "test"
		if p.Livemode {
			mode = "live"
		}
		parts = append(parts, fmt.Sprintf("%s (%s): %s", ep, mode, p.Problem))
	}
	return strings.Join(parts, "; ")
}

// released matches the held events released since then, which the tail skipped.
func (r *Runner) released(ctx context.Context, tx pgx.Tx, seen map[string]RuleSeen, since time.Time) (int, error) {
	var ids []string
	rows, err := tx.Query(ctx, `SELECT event_id FROM ledger.event_releases WHERE released_at >= $1`, since)
	if err != nil {
		return 0, fmt.Errorf("could not read released events: %w", err)
	}
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return 0, fmt.Errorf("could not read released events: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	events, err := eventstore.On(tx).List(ctx, eventstore.Filter{EventIDs: ids, Payload: true})
	if err != nil {
		return 0, err
	}
	return r.fill(ctx, tx, events, seen, false)
}

// thinResolved matches the thin events resolved since then: fetched, or covered by the fetch
// for a later thin event of the same object. A thin event carries no object, so the tail has
// nothing to match it by; once its object is fetched it is matched as the event it announces
// (v1.invoice.paid as invoice.paid), keyed by the thin event's own ID (it notifies once, like
// any event), at its own position (a rule fires for it when it came after the rule), with the
// fields of the object as the fetch that answers it returned it: its state at the thin event
// or later. A thin event whose fetch failed notifies nothing until it is fetched.
//
// The rows are read by when the fetcher resolved them, by the fetcher's clock, from a little
// before the last sweep (sweepOverlap: the two clocks may differ); the first sweep of a runner
// reads those after the earliest position any rule fires from. Rows are keyed, so reading one
// twice adds nothing.
func (r *Runner) thinResolved(ctx context.Context, tx pgx.Tx, seen map[string]RuleSeen) (int, error) {
	if len(r.byType) == 0 {
		return 0, nil // no rule on Stripe events
	}
	since, from := r.thinSweptTo.Add(-sweepOverlap), int64(0)
	if r.thinSweptTo.IsZero() {
		since, from = time.Time{}, -1
		for _, s := range seen {
			if from < 0 || s.FirstPosition < from {
				from = s.FirstPosition
			}
		}
	}
	rows, err := tx.Query(ctx, `SELECT t.event_id, coalesce(t.snapshot_id, c.snapshot_id) FROM ledger.thin_fetches t
		LEFT JOIN ledger.thin_fetches c ON c.event_id = t.covered_by
		WHERE t.status IN ('fetched', 'covered') AND t.done_at >= $1 AND t.position > $2
		  AND coalesce(t.snapshot_id, c.snapshot_id) IS NOT NULL
		ORDER BY t.position`, since, from)
	if err != nil {
		return 0, fmt.Errorf("could not read the fetched thin events: %w", err)
	}
	var thinIDs, snapIDs []string
	var thin, snap string
	if _, err := pgx.ForEachRow(rows, []any{&thin, &snap}, func() error {
		thinIDs, snapIDs = append(thinIDs, thin), append(snapIDs, snap)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("could not read the fetched thin events: %w", err)
	}
	if len(thinIDs) == 0 {
		return 0, nil
	}
	thins, err := eventstore.On(tx).List(ctx, eventstore.Filter{EventIDs: thinIDs})
	if err != nil {
		return 0, err
	}
	snaps, err := eventstore.On(tx).List(ctx, eventstore.Filter{EventIDs: snapIDs, Payload: true})
	if err != nil {
		return 0, err
	}
	byID := map[string]*eventstore.Record{}
	for i := range thins {
		byID[thins[i].ID] = &thins[i]
	}
	for i := range snaps {
		byID[snaps[i].ID] = &snaps[i]
	}
	var events []eventstore.Record
	for i, id := range thinIDs {
		t, s := byID[id], byID[snapIDs[i]]
		if t == nil || s == nil || t.Held() {
			continue
		}
		ev := *s
		ev.ID, ev.Type, ev.Position, ev.Created = t.ID, strings.TrimPrefix(t.Type, "v1."), t.Position, t.Created
		ev.Source, ev.ReceivedAt, ev.Endpoint, ev.HoldReason, ev.Released = t.Source, t.ReceivedAt, t.Endpoint, t.HoldReason, t.Released
		events = append(events, ev)
	}
	return r.fill(ctx, tx, events, seen, false)
}

// digestLines bounds a digest's text; the count in its subject is always the whole.
const digestLines = 100

// flushDigests gathers the digest rows whose period has ended (by the runner's clock).
func (r *Runner) flushDigests(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id, rule, channel, not_before, message->>'subject', late
		FROM ledger.notify_outbox WHERE status = 'pending' AND digest AND not_before <= $1
		ORDER BY rule, channel, not_before, id FOR UPDATE`, r.cfg.Clock.Now())
	if err != nil {
		return 0, fmt.Errorf("could not read due digests: %w", err)
	}
	type member struct {
		id      int64
		subject string
		late    bool
	}
	type group struct {
		rule, channel string
		period        time.Time
		members       []member
	}
	var groups []*group
	var m member
	var rule, channel string
	var period time.Time
	_, err = pgx.ForEachRow(rows, []any{&m.id, &rule, &channel, &period, &m.subject, &m.late}, func() error {
		if n := len(groups); n == 0 || groups[n-1].rule != rule || groups[n-1].channel != channel || !groups[n-1].period.Equal(period) {
			groups = append(groups, &group{rule: rule, channel: channel, period: period})
		}
		g := groups[len(groups)-1]
		g.members = append(g.members, m)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("could not read due digests: %w", err)
	}
	added := 0
	for _, g := range groups {
		key := fmt.Sprintf("digest:%s:%s:%s:%d", g.rule, g.channel, g.period.UTC().Format(time.RFC3339), g.members[0].id)
		var b strings.Builder
		ids := make([]int64, len(g.members))
		late := false
		for i, m := range g.members {
			ids[i] = m.id
			late = late || m.late
			if i < digestLines {
				b.WriteString("• " + m.subject + "\n")
			}
		}
		if len(g.members) > digestLines {
			fmt.Fprintf(&b, "… and %d more\n", len(g.members)-digestLines)
		}
		msg := Message{Subject: fmt.Sprintf(digestSubjectFormat, g.rule, len(g.members)), Text: strings.TrimRight(b.String(), "\n"), Late: late,
			Fields: Fields{"rule": g.rule, "type": "digest", "id": key, "count": len(g.members), "period_end": g.period.UTC().Format(time.RFC3339)}}
		js, err := json.Marshal(msg)
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger.notify_outbox (rule, event_id, channel, idempotency_key, message, late, event_created)
			VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (rule, event_id) DO NOTHING`,
			g.rule, key, g.channel, IdempotencyKey(g.rule, key), string(js), late, g.period); err != nil {
			return 0, fmt.Errorf("could not add the digest %s: %w", key, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE ledger.notify_outbox SET status = 'digested', digest_of = $2 WHERE id = ANY($1)`, ids, key); err != nil {
			return 0, fmt.Errorf("could not mark the digest %s's members: %w", key, err)
		}
		added++
	}
	return added, nil
}
