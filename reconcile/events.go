package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/domain"
)

// Retention is how far back Stripe's Events API lists events.
const Retention = 30 * 24 * time.Hour

// retentionMargin keeps a default window clear of the retention edge, where events expire
// while they are being listed.
const retentionMargin = 10 * time.Minute

// eventPage is one page of the Events API as Stripe returned it.
type eventPage struct {
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
}

// eventsWindow is the created range an events run checks: what was asked, else what the run it
// resumes checked, else from the end of the last proven window (less the overlap) up to now,
// never further back than Stripe keeps events.
func (r *Reconciler) eventsWindow(ctx context.Context, job Job, opts Options, sc Scope, resume *ScopeRun) (from, to time.Time, err error) {
	now := r.cfg.Now().UTC().Truncate(time.Second)
	horizon := now.Add(-Retention + retentionMargin)
	switch {
	case !opts.From.IsZero() || !opts.To.IsZero():
		from, to = opts.From, opts.To
		if to.IsZero() {
			to = now
		}
		if from.IsZero() {
			from = horizon
		}
	case resume != nil && resume.WindowFrom != nil && resume.WindowTo != nil:
		from, to = *resume.WindowFrom, *resume.WindowTo
	default:
		from, to = horizon, now
		if job == JobEvents {
			var last *time.Time
			if err := r.pool.QueryRow(ctx, `SELECT max(window_to) FROM ledger.reconcile_coverage
				WHERE livemode = $1 AND account IS NOT DISTINCT FROM $2`, sc.Livemode, sc.account()).Scan(&last); err != nil {
				return from, to, fmt.Errorf("could not read the proven windows: %w", err)
			}
			if last != nil && last.Add(-r.cfg.Overlap).After(from) {
				from = last.Add(-r.cfg.Overlap)
			}
		}
	}
	if from.Before(horizon) {
		from = horizon // Stripe no longer lists older events; the objects job covers them
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("empty window: from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from.UTC(), to.UTC(), nil
}

// runEvents lists the window's events oldest to newest and appends those the log lacks, exactly
// as Stripe's API returned them, with source reconcile. The walk starts just after the newest
// event older than the window (found with one request) and follows ending_before, so the cursor
// saved after each page is a point before which everything has been checked; when the window
// reaches back to the oldest event Stripe keeps, there is no such anchor and the walk goes newest
// to oldest with starting_after instead. Either way a crashed run resumes from its cursor.
//
// A connected account's events are read with its Stripe-Account header: Stripe lists them with
// "account" set, and they are appended as listed.
func (r *Reconciler) runEvents(ctx context.Context, api *stripeAPI, rec *recorder, job Job, opts Options, sc Scope, resume *ScopeRun) error {
	from, to, err := r.eventsWindow(ctx, job, opts, sc, resume)
	if err != nil {
		return err
	}
	cur := rec.cur
	cur.WindowFrom, cur.WindowTo = &from, &to
	filter := func() *stripe.EventListParams {
		p := &stripe.EventListParams{}
		p.Context = ctx // a cancelled run stops waiting on the limiter, a back-off or Stripe
		if sc.Account != "" {
			p.SetStripeAccount(sc.Account)
		}
		p.Limit = stripe.Int64(int64(r.cfg.PageSize))
		p.Single = true
		if job == JobEventsFast {
			p.DeliverySuccess = stripe.Bool(false)
		}
		return p
	}

	cursor := ""
	if resume != nil && opts.From.IsZero() && opts.To.IsZero() && (strings.HasPrefix(resume.Cursor, "asc:") || strings.HasPrefix(resume.Cursor, "desc:")) {
		cursor = resume.Cursor
	}
	// The fast pass's list changes while it is walked (an event leaves it when a retry succeeds),
	// so no event of it can serve as an anchor: it always walks newest to oldest.
	if cursor == "" && job == JobEventsFast {
		cursor = "desc:"
	}
	if cursor == "" {
		p := filter()
		p.Limit = stripe.Int64(1)
		p.CreatedRange = &stripe.RangeQueryParams{LesserThan: from.Unix()}
		pg, err := fetchEvents(ctx, api, p)
		if err != nil {
			return err
		}
		cursor = "desc:"
		if len(pg.Data) > 0 {
			env, err := domain.DecodeEnvelope(pg.Data[0])
			if err != nil {
				return fmt.Errorf("the Events API listed something that is not an event: %w", err)
			}
			cursor = "asc:" + env.ID
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filter()
		dir, id, _ := strings.Cut(cursor, ":")
		if dir == "asc" {
			p.EndingBefore = stripe.String(id)
			p.CreatedRange = &stripe.RangeQueryParams{LesserThanOrEqual: to.Unix()}
		} else {
			p.CreatedRange = &stripe.RangeQueryParams{GreaterThanOrEqual: from.Unix(), LesserThanOrEqual: to.Unix()}
			if id != "" {
				p.StartingAfter = stripe.String(id)
			}
		}
		pg, err := fetchEvents(ctx, api, p)
		var se *stripe.Error
		if errors.As(err, &se) && se.Code == stripe.ErrorCodeResourceMissing && id != "" {
			// The cursor's event has aged out of the 30 days: start the window again.
			r.cfg.Logger.Info("reconcile cursor expired; restarting the window", "run", rec.run.ID, "cursor", cursor)
			cursor = ""
			return r.runEvents(ctx, api, rec, job, Options{From: from, To: to, DryRun: opts.DryRun}, sc, nil)
		}
		if err != nil {
			return err
		}
		items := pg.Data
		if dir == "asc" {
			slices.Reverse(items) // pages come newest first
		}
		if err := r.checkPage(ctx, rec, items, sc, opts.DryRun); err != nil {
			return err
		}
		if len(items) > 0 {
			last, _ := domain.DecodeEnvelope(items[len(items)-1])
			cursor = dir + ":" + last.ID
		}
		cur.Cursor = cursor
		if err := rec.page(ctx); err != nil {
			return err
		}
		if !pg.HasMore || len(items) == 0 {
			break
		}
	}
	// Only a default window (contiguous with the last proven one) extends the proven coverage: a
	// narrow window asked for by hand must not make the next run skip what lies before it.
	if job == JobEvents && !opts.DryRun && opts.From.IsZero() && opts.To.IsZero() {
		if _, err := r.pool.Exec(ctx, `INSERT INTO ledger.reconcile_coverage (window_from, window_to, run_id, livemode, account)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, from, to, rec.run.ID, sc.Livemode, sc.account()); err != nil {
			return fmt.Errorf("could not record the proven window: %w", err)
		}
	}
	return nil
}

// fetchEvents makes one Events API request.
func fetchEvents(ctx context.Context, api *stripeAPI, p *stripe.EventListParams) (eventPage, error) {
	it := api.Events.List(p)
	if err := it.Err(); err != nil {
		return eventPage{}, apiError(ctx, "could not list events", err)
	}
	var pg eventPage
	list := it.EventList()
	if list == nil || list.LastResponse == nil {
		return pg, errors.New("could not list events: no response")
	}
	if err := json.Unmarshal(list.LastResponse.RawJSON, &pg); err != nil {
		return pg, fmt.Errorf("could not read the Events API page: %w", err)
	}
	return pg, nil
}

// checkPage looks the page's events up in the log with one query and appends the missing ones.
//
// An event listed in one scope's Events API but saying another mode or account is not appended:
// the scope's reads are what its figures rest on, and such an event is a finding to look at.
func (r *Reconciler) checkPage(ctx context.Context, rec *recorder, items []json.RawMessage, sc Scope, dryRun bool) error {
	if len(items) == 0 {
		return nil
	}
	evs := make([]domain.Event, 0, len(items))
	ids := make([]string, 0, len(items))
	for _, raw := range items {
		// The item's exact bytes, as Stripe rendered them on the page: not a re-marshalled struct.
		ev, err := domain.NewEvent(slices.Clone([]byte(raw)), domain.SourceReconcile, "")
		if err != nil {
			return fmt.Errorf("the Events API listed something that is not an event: %w", err)
		}
		if ev.Livemode != sc.Livemode || ev.Account != sc.Account {
			rec.find(map[string]any{"scope_mismatch": ev.ID, "type": ev.Type, "livemode": ev.Livemode, "account": ev.Account,
				"listed_livemode": sc.Livemode, "listed_account": sc.Account})
			rec.run.Drift["events.scope_mismatch"]++
			continue
		}
		evs = append(evs, ev)
		ids = append(ids, ev.ID)
	}
	rec.run.EventsSeen += len(evs)
	have, err := r.store.Versions(ctx, ids)
	if err != nil {
		return err
	}
	var missing, renderings []domain.Event
	for _, ev := range evs {
		switch versions, ok := have[ev.ID]; {
		case !ok:
			missing = append(missing, ev)
			rec.find(map[string]any{"missing_event": ev.ID, "type": ev.Type, "object_id": ev.ObjectID, "created": ev.CreatedTime()})
		case !slices.Contains(versions, ev.APIVersion):
			// The log has the event at another version (a webhook at its endpoint's): this
			// rendering is kept beside it, for audit (ledger.event_renderings). The IDs are what
			// the job compares, never the bytes.
			renderings = append(renderings, ev)
		}
	}
	rec.run.MissingFound += len(missing)
	if dryRun {
		return nil
	}
	if err := r.repair(ctx, rec, missing, "missing events"); err != nil {
		return err
	}
	return r.repair(ctx, rec, renderings, "other renderings of events")
}

// repair appends events and counts those the log did not have yet (a webhook may have brought a
// missing event in the meantime; a snapshot may be a re-run's).
func (r *Reconciler) repair(ctx context.Context, rec *recorder, evs []domain.Event, what string) error {
	if len(evs) == 0 {
		return nil
	}
	res, err := r.store.Append(ctx, evs)
	if err != nil {
		return fmt.Errorf("could not append %s: %w", what, err)
	}
	for _, x := range res {
		if x.Err != nil {
			return fmt.Errorf("could not append %s: %w", what, x.Err)
		}
		if !x.Duplicate {
			rec.run.Repaired++
		}
	}
	return nil
}
