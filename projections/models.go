package projections

import (
	"slices"

	"github.com/stripeledger/ledger/domain"
)

// The read models, each declared once. To add one: declare it here with its reducer (a pure
// function in domain/ from an object's events to its row) and its columns, add it to Models in
// dependency order, and give the reducer its tests; the engine, replay, the API, `ledger query`
// and the catalog comments follow from the declaration. The README's "Read models" section
// walks through it.

// Models is every read model, each after the models it reads.
var Models = []*Model{Coupons, Customers, Disputes, CheckoutSessions, Subscriptions, BalanceTransactions, InvoicePayments, PaymentIntents,
	Charges, Invoices, Refunds, Payouts, CreditNotes}

// ModelByTable finds a model by its table name.
func ModelByTable(name string) (*Model, bool) {
	i := slices.IndexFunc(Models, func(m *Model) bool { return m.Table == name })
	if i < 0 {
		return nil, false
	}
	return Models[i], true
}

const (
	currencyComment = "ISO 4217 currency, lowercase: the minor unit of every amount in the row."
	createdComment  = "When the object was created in Stripe."
)

// Coupons are Stripe coupons: what a discount that names its coupon by ID (API versions from
// 2025-09-30.clover) is valued with.
var Coupons = declare(spec[domain.CouponRow]{
	table: "coupons", kind: domain.KindCoupons, objectType: "coupon",
	comment: "Stripe coupons as of their latest event (coupon.*); deleted coupons stay, with deleted = true (their discounts still apply). A coupon ID is one row even where several modes or accounts chose it: scopes holds each one's terms, and a discount is valued with those of its own mode and account.",
	fold:    domain.FoldCoupon,
	source:  func(r *domain.CouponRow) *domain.Provenance { return r.Source() },
	columns: []column[domain.CouponRow]{
		text("id", "Stripe coupon ID, chosen by the account (e.g. LAUNCH20).", "id", func(r *domain.CouponRow) *string { return &r.ID }),
		nullText("name", "Name shown to customers; NULL when none.", "name", func(r *domain.CouponRow) **string { return &r.Name }),
		text("duration", "forever, once or repeating.", "duration", func(r *domain.CouponRow) *string { return &r.Duration }),
		nullInteger("duration_in_months", "Months a repeating coupon applies for; NULL for forever and once.", "duration_in_months", func(r *domain.CouponRow) **int64 { return &r.DurationInMonths }),
		nullDecimal("percent_off", "Percent off (an exact decimal, 12.5 stays 12.5); NULL for an amount-off coupon.", "percent_off", func(r *domain.CouponRow) **string { return &r.PercentOff }),
		nullInteger("amount_off", "Amount off in minor units of currency; NULL for a percent-off coupon.", "amount_off", func(r *domain.CouponRow) **int64 { return &r.AmountOff }),
		nullText("currency", "Currency of amount_off (ISO 4217, lowercase); NULL for a percent-off coupon.", "currency", func(r *domain.CouponRow) **string { return &r.Currency }),
		nullJSON("amount_off_in", "amount_off in the coupon's other currencies (currency_options): JSON object of currency → minor units; NULL when the event carried none.", "currency_options", func(r *domain.CouponRow) *map[string]int64 { return &r.AmountOffIn }),
		nullBoolean("valid", "Whether it can still be redeemed; NULL when the event did not say.", "valid", func(r *domain.CouponRow) **bool { return &r.Valid }),
		boolean("deleted", "True once the coupon was deleted in Stripe (discounts that use it go on).", "", func(r *domain.CouponRow) *bool { return &r.Deleted }),
		metadata("metadata", "The coupon's Stripe metadata; NULL when the event carried none.", "metadata", func(r *domain.CouponRow) *map[string]string { return &r.Metadata }),
		jsonColumn("scopes", "The coupons of this ID, one per mode and account, each as of its own latest event: JSON array of {livemode, account, deleted, event_id, terms {coupon, duration, duration_in_months, percent_off, amount_off, currency, amount_off_in, unvalued}}. A subscription's or customer's discount naming the ID is valued with the terms of its own mode and account.", "", func(r *domain.CouponRow) *[]domain.CouponScope { return &r.Scopes }),
		timestamp("created", createdComment, "created", func(r *domain.CouponRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC"},
	filters: []string{"duration", "currency"},
	brief:   []string{"id", "name", "duration", "percent_off", "amount_off", "currency", "deleted", "created"},
})

// couponTerms are the terms of the coupons in in (read by a Via relation on a list of coupon
// IDs) in the given mode and account.
func couponTerms(in inputs, ids []string, livemode bool, account *string) map[string]domain.Discount {
	var rows []domain.CouponRow
	for _, id := range ids {
		rows = append(rows, related[domain.CouponRow](in, Coupons, id)...)
	}
	return domain.CouponTerms(rows, livemode, account)
}

// Customers are Stripe customers.
var Customers = declare(spec[domain.CustomerRow]{
	table: "customers", kind: domain.KindCustomers, objectType: "customer",
	comment: "Stripe customers as of their latest event. Deleted customers stay, with deleted = true.",
	fold:    domain.FoldCustomer,
	source:  func(r *domain.CustomerRow) *domain.Provenance { return r.Source() },
	reads:   []Relation{{Model: Coupons, Via: "coupons"}},
	// A discount that names its coupon by ID takes the coupon's terms (clover on).
	derive: func(r *domain.CustomerRow, in inputs, e env) {
		if known := couponTerms(in, r.Coupons, r.Livemode, r.Account); known != nil {
			r.FillCoupons(known)
		}
	},
	columns: []column[domain.CustomerRow]{
		text("id", "Stripe customer ID (cus_...).", "id", func(r *domain.CustomerRow) *string { return &r.ID }),
		nullText("email", "Email address; NULL when none.", "email", func(r *domain.CustomerRow) **string { return &r.Email }),
		nullText("name", "Name; NULL when none.", "name", func(r *domain.CustomerRow) **string { return &r.Name }),
		nullText("currency", "The customer's default currency (ISO 4217, lowercase); NULL until it has one.", "currency", func(r *domain.CustomerRow) **string { return &r.Currency }),
		metadata("metadata", "The customer's Stripe metadata (JSON object of strings); NULL when the event carried none.", "metadata", func(r *domain.CustomerRow) *map[string]string { return &r.Metadata }),
		boolean("deleted", "True once the customer was deleted in Stripe.", "", func(r *domain.CustomerRow) *bool { return &r.Deleted }),
		nullJSON("discount", "The customer's discount as of its latest event (JSON: id, coupon, promotion_code, duration, percent_off as a decimal string, amount_off, currency, start, end); NULL when none. It applies to the customer's subscriptions that have no discount of their own.", "discount", func(r *domain.CustomerRow) **domain.Discount { return &r.Discount }),
		nullJSON("discount_history", "The customer's discount after each event that changed it, oldest first (JSON array of {at, event_id, discount}, discount null once removed); NULL when it never had one. A subscription's MRR at t reads the entry in force at t.", "discount", func(r *domain.CustomerRow) *[]domain.CustomerDiscount { return &r.DiscountHistory }),
		nullJSON("coupons", "The IDs of every coupon its discount history names (JSON array of strings); NULL when none. A discount that names its coupon without embedding it (API versions from 2025-09-30.clover) takes the terms of ledger.coupons'.", "", func(r *domain.CustomerRow) *[]string { return &r.Coupons }),
		timestamp("created", createdComment, "created", func(r *domain.CustomerRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "email"},
	filters: []string{"email", "currency"},
	brief:   []string{"id", "email", "name", "currency", "deleted", "created"},
})

// Disputes are Stripe disputes (charge.dispute.*).
var Disputes = declare(spec[domain.DisputeRow]{
	table: "disputes", kind: domain.KindDisputes, objectType: "dispute",
	comment: "Stripe disputes as of their latest event (charge.dispute.*). Money in the currency's minor unit.",
	fold:    domain.FoldDispute,
	source:  func(r *domain.DisputeRow) *domain.Provenance { return r.Source() },
	columns: []column[domain.DisputeRow]{
		text("id", "Stripe dispute ID (dp_...).", "id", func(r *domain.DisputeRow) *string { return &r.ID }),
		text("charge", "The disputed charge.", "charge", func(r *domain.DisputeRow) *string { return &r.Charge }),
		integer("amount", "Amount disputed, minor units.", "amount", func(r *domain.DisputeRow) *int64 { return &r.Amount }),
		text("currency", currencyComment, "currency", func(r *domain.DisputeRow) *string { return &r.Currency }),
		text("status", "warning_needs_response, needs_response, under_review, won, lost, ...", "status", func(r *domain.DisputeRow) *string { return &r.Status }),
		text("reason", "fraudulent, product_not_received, ...", "reason", func(r *domain.DisputeRow) *string { return &r.Reason }),
		timestamp("created", "When the dispute was opened.", "created", func(r *domain.DisputeRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC"},
	filters: []string{"status", "currency", "charge"},
	brief:   []string{"id", "charge", "status", "currency", "amount", "reason", "created"},
})

// CheckoutSessions are Stripe Checkout sessions: where app user IDs of Checkout purchases come
// from.
var CheckoutSessions = declare(spec[domain.CheckoutSessionRow]{
	table: "checkout_sessions", kind: domain.KindCheckoutSessions, objectType: "checkout.session",
	comment: "Stripe Checkout sessions as of their latest event: where app user IDs of Checkout purchases come from.",
	fold:    domain.FoldCheckoutSession,
	source:  func(r *domain.CheckoutSessionRow) *domain.Provenance { return r.Source() },
	reads:   []Relation{{Model: Customers, Via: "customer"}},
	derive: func(r *domain.CheckoutSessionRow, in inputs, e env) {
		in2 := domain.IdentityInput{Customer: domain.Deref(r.Customer), Session: r}
		if c := related[domain.CustomerRow](in, Customers, in2.Customer); len(c) > 0 {
			in2.CustomerMeta = c[0].Metadata
		}
		r.AppUserID = e.identity.AppUserID(in2)
	},
	columns: []column[domain.CheckoutSessionRow]{
		text("id", "Checkout session ID (cs_...).", "id", func(r *domain.CheckoutSessionRow) *string { return &r.ID }),
		nullText("customer", "Stripe customer ID; NULL for a guest checkout.", "customer", func(r *domain.CheckoutSessionRow) **string { return &r.Customer }),
		nullText("client_reference_id", "The app's reference passed to Checkout; NULL when none.", "client_reference_id", func(r *domain.CheckoutSessionRow) **string { return &r.ClientReferenceID }),
		nullText("subscription", "The subscription it created; NULL when none.", "subscription", func(r *domain.CheckoutSessionRow) **string { return &r.Subscription }),
		text("mode", "payment, subscription or setup.", "mode", func(r *domain.CheckoutSessionRow) *string { return &r.Mode }),
		nullText("status", "open, complete, expired; NULL when Stripe sent none.", "status", func(r *domain.CheckoutSessionRow) **string { return &r.Status }),
		text("payment_status", "paid, unpaid, no_payment_required.", "payment_status", func(r *domain.CheckoutSessionRow) *string { return &r.PaymentStatus }),
		nullText("currency", "ISO 4217 currency, lowercase; NULL for a setup session.", "currency", func(r *domain.CheckoutSessionRow) **string { return &r.Currency }),
		nullInteger("amount_total", "Total, minor units; NULL for a setup session.", "amount_total", func(r *domain.CheckoutSessionRow) **int64 { return &r.AmountTotal }),
		metadata("metadata", "The session's Stripe metadata; NULL when none.", "metadata", func(r *domain.CheckoutSessionRow) *map[string]string { return &r.Metadata }),
		nullText("app_user_id", "The purchaser's user ID in the app (see subscriptions.app_user_id); NULL when nothing identifies it.", "", func(r *domain.CheckoutSessionRow) **string { return &r.AppUserID }),
		timestamp("created", "When the session was created.", "created", func(r *domain.CheckoutSessionRow) *int64 { return &r.Created }),
	},
	indexes: []string{"subscription"},
	filters: []string{"status", "customer", "subscription", "currency", "app_user_id"},
	brief:   []string{"id", "customer", "mode", "status", "payment_status", "currency", "amount_total", "created"},
})

// subscriptionFold is a subscription's row, its valuation inputs after each event and its
// movement log (derived from the inputs, its customer's discounts and the MRR settings).
type subscriptionFold struct {
	domain.SubscriptionRow
	history   domain.SubscriptionHistory
	attention *string // the fold's own attention, before the valuation adds its notes
	moves     []domain.Movement
	inputs    []byte
	sensitive []string // what in the inputs the MRR settings can act on (domain.Sensitivity)
}

func foldSubscription(facts []domain.Fact) (subscriptionFold, error) {
	r, h, err := domain.FoldSubscriptionHistory(facts)
	if err != nil {
		return subscriptionFold{}, err
	}
	inputs, err := encodeInputs(r.Attention, &h)
	return subscriptionFold{SubscriptionRow: r, history: h, attention: r.Attention, inputs: inputs, sensitive: h.Sensitivity().Names()}, err
}

// valueSubscription sets a folded subscription's mrr, attention and movement log under the MRR
// settings, with its customer's discount history. That history is indexed by Stripe time (the
// discount in force at t is the entry at or before t), so valuing a past version with the
// customer's whole history, as the ledger knows it now, puts each discount at its own time on
// Stripe's timeline. For known_at it means a version known at P is valued with the customer's
// discounts known now, not those known at P: a customer discount change that arrives later
// re-values every version (the history is written again, Relation.Values).
func valueSubscription(r *subscriptionFold, in inputs, e env) {
	var discounts []domain.CustomerDiscount
	if c := related[domain.CustomerRow](in, Customers, r.Customer); len(c) > 0 {
		discounts = c[0].DiscountHistory
	}
	// Discounts that name their coupon by ID (clover on) take the coupon's terms. The inputs are
	// encoded again with them: the movement log's recompute and a reader at a cut value the
	// inputs without the coupons.
	if known := couponTerms(in, r.Coupons, r.Livemode, r.Account); known != nil && r.history.FillCoupons(known) {
		r.SubscriptionRow.FillCoupons(known)
		if inputs, err := encodeInputs(r.attention, &r.history); err == nil {
			r.inputs, r.sensitive = inputs, r.history.Sensitivity().Names()
		}
	}
	r.Attention = r.attention
	r.moves = r.history.Value(&r.SubscriptionRow, discounts, e.mrr)
}

// Subscriptions are Stripe subscriptions with their MRR and its movement log.
var Subscriptions = declare(spec[subscriptionFold]{
	table: "subscriptions", kind: domain.KindSubscriptions, objectType: "subscription",
	comment: "Stripe subscriptions as of their latest event, with monthly recurring revenue (mrr) by the MRR settings (Stripe's definition by default; README, Revenue metrics). Money in the currency's minor unit.",
	fold:    foldSubscription,
	source:  func(r *subscriptionFold) *domain.Provenance { return r.Source() },
	reads:   []Relation{{Model: Customers, Via: "customer", Values: true}, {Model: CheckoutSessions, Column: "subscription"}, {Model: Coupons, Via: "coupons", Values: true}},
	derive: func(r *subscriptionFold, in inputs, e env) {
		id := domain.IdentityInput{Customer: r.Customer, SubscriptionMeta: r.Metadata}
		if c := related[domain.CustomerRow](in, Customers, r.Customer); len(c) > 0 {
			id.CustomerMeta = c[0].Metadata
		}
		id.Session = domain.FirstSession(related[domain.CheckoutSessionRow](in, CheckoutSessions, r.ID))
		r.AppUserID = e.identity.AppUserID(id)
		// A version read from the history table is valued again from its valuation inputs with
		// its customer at the cut (a fold of the log cut there values it so); a row with no
		// fold state and no inputs keeps the mrr and attention it was written with.
		if r.inputs != nil && r.history.States == nil {
			attention, h, err := decodeInputs(r.inputs)
			if err != nil {
				return // stored as written: the figures it was valued with
			}
			r.attention, r.history = attention, h
		}
		if r.inputs != nil {
			valueSubscription(r, in, e)
		}
	},
	value: valueSubscription,
	valuation: &column[subscriptionFold]{
		Column: Column{Name: "valuation_inputs", Type: "bytea",
			Comment: "What this version's mrr and attention are valued from (its valuation inputs, in the ledger's own encoding, projections/inputs.go; not for queries): a reader at a cut values them again with the customer's discounts at the cut."},
		get:  func(r *subscriptionFold) any { return r.inputs },
		scan: func(r *subscriptionFold) any { return &r.inputs },
	},
	columns: []column[subscriptionFold]{
		text("id", "Stripe subscription ID (sub_...).", "id", func(r *subscriptionFold) *string { return &r.ID }),
		text("customer", "Stripe customer ID.", "customer", func(r *subscriptionFold) *string { return &r.Customer }),
		nullText("app_user_id", "The subscriber's user ID in the app: per the identity setting, from metadata, the Checkout session's client_reference_id, the customer ID, or a stable $anon:... ID.", "", func(r *subscriptionFold) **string { return &r.AppUserID }),
		text("status", "Stripe status: trialing, active, past_due, unpaid, canceled, incomplete, incomplete_expired, paused.", "status", func(r *subscriptionFold) *string { return &r.Status }),
		text("currency", currencyComment, "currency", func(r *subscriptionFold) *string { return &r.Currency }),
		jsonColumn("items", "Prices subscribed to, with the current quantity: JSON array of {id, price, product, quantity, interval, interval_count, usage_type (licensed or metered), billing_scheme (per_unit or tiered), tiers_mode (volume or graduated), unit_amount, unit_amount_decimal (exact decimal string), transform_quantity {divide_by, round}, tiers [{up_to, unit_amount, unit_amount_decimal, flat_amount, flat_amount_decimal}] when Stripe sent them, discounts (the item's own), current_period_start and current_period_end (the item's own billing period, Unix seconds, from API version 2025-03-31.basil)}; amounts in minor units, null when Stripe sent none.", "items", func(r *subscriptionFold) *[]domain.SubscriptionItemRow { return &r.Items }),
		nullTimestamp("trial_start", "Trial start; NULL when no trial.", "trial_start", func(r *subscriptionFold) **int64 { return &r.TrialStart }),
		nullTimestamp("trial_end", "Trial end; NULL when no trial.", "trial_end", func(r *subscriptionFold) **int64 { return &r.TrialEnd }),
		nullTimestamp("current_period_start", "Start of the current billing period (from 2025-03-31.basil the earliest of its items' starts); NULL when the event did not say (attention says why).", "current_period_start", func(r *subscriptionFold) **int64 { return &r.CurrentPeriodStart }),
		nullTimestamp("current_period_end", "End of the current billing period (from 2025-03-31.basil the latest of its items' ends); NULL when the event did not say (attention says why).", "current_period_end", func(r *subscriptionFold) **int64 { return &r.CurrentPeriodEnd }),
		boolean("cancel_at_period_end", "True when the subscription is set to cancel at the end of the period.", "cancel_at_period_end", func(r *subscriptionFold) *bool { return &r.CancelAtPeriodEnd }),
		nullTimestamp("cancel_at", "When it is scheduled to cancel; NULL when not.", "cancel_at", func(r *subscriptionFold) **int64 { return &r.CancelAt }),
		nullTimestamp("canceled_at", "When it was canceled; NULL when not.", "canceled_at", func(r *subscriptionFold) **int64 { return &r.CanceledAt }),
		nullTimestamp("ended_at", "When it ended; NULL while not ended.", "ended_at", func(r *subscriptionFold) **int64 { return &r.EndedAt }),
		nullText("pause_behavior", "pause_collection.behavior while collection is paused; NULL otherwise.", "pause_collection", func(r *subscriptionFold) **string { return &r.PauseBehavior }),
		boolean("paused", "True while collection is paused (pause_collection set). With LEDGER_MRR_PAUSED=zero its MRR is 0, recorded as a pause movement.", "", func(r *subscriptionFold) *bool { return &r.Paused }),
		nullJSON("discounts", "The subscription's own discounts in Stripe's order (discounts[], or the legacy discount): JSON array of {id, coupon, promotion_code, duration, duration_in_months, percent_off (decimal string), amount_off, currency, amount_off_in (coupon currency_options), start, end, unvalued}; NULL when it has none (the customer's discount then applies).", "discount", func(r *subscriptionFold) *[]domain.Discount { return &r.Discounts }),
		nullJSON("coupons", "The IDs of every coupon its discounts (its own and its items') have named in any of its events (JSON array of strings); NULL when none. A discount that names its coupon without embedding it (API versions from 2025-09-30.clover) is valued with the terms of ledger.coupons'.", "", func(r *subscriptionFold) *[]string { return &r.Coupons }),
		metadata("metadata", "The subscription's Stripe metadata; NULL when the event carried none.", "metadata", func(r *subscriptionFold) *map[string]string { return &r.Metadata }),
		nullInteger("mrr", "Monthly recurring revenue in minor units as of the newest of its events and its customer's discount changes, by the MRR settings (README, Revenue metrics): active and past_due only; each licensed item valued exactly from its price's shape, per month (year / 12, week * 52 / 12, day * 365 / 12, over interval_count); item discounts, then the subscription's (or the customer's); rounded down once. NULL when a price or discount cannot be valued (attention says why).", "", func(r *subscriptionFold) **int64 { return &r.MRR }),
		nullText("attention", "Why a person should look at this row: an event of another API version without a billing period, a price or discount that cannot be valued (mrr is then NULL), metered prices left out of mrr; NULL when nothing.", "", func(r *subscriptionFold) **string { return &r.Attention }),
		timestamp("created", createdComment, "created", func(r *subscriptionFold) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "app_user_id", "mrr"}, // mrr: the unvalued count (mrr IS NULL) of every MRR answer
	filters: []string{"status", "customer", "app_user_id", "currency"},
	brief:   []string{"id", "customer", "app_user_id", "status", "currency", "mrr", "current_period_end", "created"},
	children: []child[subscriptionFold]{{
		Child: Child{
			Table: "subscription_movements",
			Comment: "Every change of a subscription's MRR, when it takes effect, under the MRR settings ledger.mrr_settings records: a subscription's amounts up to its newest input (its events, its customer's discount changes) sum to its mrr; " +
				"movements a rule times later (a discount's end, past_due + N days, the period end of an immediate cancellation) are in the log with their future time. Every metric is computed from it.",
			Key:        "subscription",
			PrimaryKey: []string{"subscription", "seq"},
			Columns: []Column{
				{Name: "subscription", Type: "text", Comment: "Stripe subscription ID."},
				{Name: "seq", Type: "integer", Comment: "The movement's place in the subscription's log, from 0 (time-driven movements have no event of their own to key them)."},
				{Name: "customer", Type: "text", Comment: "Stripe customer ID."},
				{Name: "currency", Type: "text", Comment: "Currency of the amounts."},
				{Name: "kind", Type: "text", Comment: "new (0 to >0, first time), reactivation (0 to >0 after a churn), expansion (up), contraction (down, still >0), churn (to 0), pause (to 0 for paused collection) and resume (back from a pause) with LEDGER_MRR_PAUSED=zero only."},
				{Name: "amount", Type: "bigint", Comment: "mrr_after - mrr_before, minor units."},
				{Name: "mrr_before", Type: "bigint", Comment: "The subscription's MRR before, minor units."},
				{Name: "mrr_after", Type: "bigint", Comment: "The subscription's MRR after, minor units."},
				{Name: "source_events", Type: "text[]", Comment: "The events of the instant that caused it (the customer's event for a change of its discount); for a movement a rule timed, the event whose state was in force then."},
				{Name: "at", Type: "timestamptz", Comment: "When it takes effect: the event's created, or the instant a rule fixes (a discount's end, past_due + N days, the period end of an immediate cancellation)."},
				{Name: "period_start", Type: "timestamptz", Null: true, Comment: "Start of the service period in force at at (FX converts at its date with LEDGER_FX_RATE_DATE=period_start); NULL when the event gave none."},
				{Name: "livemode", Type: "boolean", Comment: "The subscription's mode: true live, false test."},
				{Name: "account", Type: "text", Null: true, Comment: "The subscription's Connect account (acct_...); NULL for the platform's own."},
			},
			Indexes: []string{"livemode, account, at"},
		},
		rows: func(r *subscriptionFold) [][]any {
			out := make([][]any, 0, len(r.moves))
			for _, m := range r.moves {
				out = append(out, movementValues(&m, r.Livemode, r.Account))
			}
			return out
		},
	}, {
		Child: Child{
			Table:      "subscription_mrr_inputs",
			Comment:    "What each subscription's MRR is computed from after each of its events (prices valued exactly, discounts, status, pause, billing period), the same under every MRR setting: a settings change recomputes the movement log from these and the customers' discounts without replaying the log.",
			Key:        "subscription",
			PrimaryKey: []string{"subscription"},
			Columns: []Column{
				{Name: "subscription", Type: "text", Comment: "Stripe subscription ID."},
				{Name: "inputs", Type: "bytea", Comment: "The valuation inputs, in the ledger's own encoding (projections/inputs.go); not for queries."},
				{Name: "sensitive_to", Type: "text[]", Comment: "What in the inputs the MRR settings can act on: past_due (LEDGER_MRR_PAST_DUE_DAYS), canceled (LEDGER_MRR_CHURN_AT), paused (LEDGER_MRR_PAUSED), discount_once, discount_recurring, discount_other (LEDGER_MRR_DISCOUNTS); a settings change values again only the subscriptions it can change (and those whose customer has discounts, for LEDGER_MRR_DISCOUNTS)."},
			},
		},
		rows: func(r *subscriptionFold) [][]any { return [][]any{{r.ID, r.inputs, r.sensitive}} },
	}},
})

// movementValues are a movement's subscription_movements columns.
func movementValues(m *domain.Movement, livemode bool, account *string) []any {
	return []any{m.Subscription, m.Seq, m.Customer, m.Currency, string(m.Kind), m.Amount, m.MRRBefore, m.MRRAfter,
		m.SourceEvents, ts(m.At), tsp(m.PeriodStart), livemode, account}
}

// InvoicePayments are the payments of invoices (invoice_payment.*, API versions from
// 2025-05-28.basil): what gives an invoice, a payment intent and a charge their links from basil
// on, when Stripe no longer puts them on the objects.
var InvoicePayments = declare(spec[domain.InvoicePaymentRow]{
	table: "invoice_payments", kind: domain.KindInvoicePayments, objectType: "invoice_payment",
	comment: "Stripe invoice payments as of their latest event (invoice_payment.*; API versions from 2025-05-28.basil send them): each payment of an invoice, made with a payment intent or a charge. An invoice paid in parts has one row per payment. Money in the currency's minor unit.",
	fold:    domain.FoldInvoicePayment,
	source:  func(r *domain.InvoicePaymentRow) *domain.Provenance { return r.Source() },
	columns: []column[domain.InvoicePaymentRow]{
		text("id", "Stripe invoice payment ID (inpay_...).", "id", func(r *domain.InvoicePaymentRow) *string { return &r.ID }),
		text("invoice", "The invoice it pays (in_...).", "invoice", func(r *domain.InvoicePaymentRow) *string { return &r.Invoice }),
		text("status", "open, paid or canceled.", "status", func(r *domain.InvoicePaymentRow) *string { return &r.Status }),
		nullInteger("amount_paid", "Amount paid, minor units; NULL until paid.", "amount_paid", func(r *domain.InvoicePaymentRow) **int64 { return &r.AmountPaid }),
		integer("amount_requested", "Amount requested, minor units.", "amount_requested", func(r *domain.InvoicePaymentRow) *int64 { return &r.AmountRequested }),
		text("currency", currencyComment, "currency", func(r *domain.InvoicePaymentRow) *string { return &r.Currency }),
		boolean("is_default", "True for the invoice's default payment (the one Stripe attempts).", "is_default", func(r *domain.InvoicePaymentRow) *bool { return &r.IsDefault }),
		text("payment_type", "What it was made with: payment_intent, charge (a charge without a payment intent), payment_record, ... (payment.type).", "payment", func(r *domain.InvoicePaymentRow) *string { return &r.PaymentType }),
		nullText("payment_intent", "The payment intent (payment.payment_intent); NULL when made otherwise.", "payment", func(r *domain.InvoicePaymentRow) **string { return &r.PaymentIntent }),
		nullText("charge", "The charge (payment.charge) of a payment made with a charge alone; NULL otherwise (a payment intent's charges are in charges, by payment_intent).", "payment", func(r *domain.InvoicePaymentRow) **string { return &r.Charge }),
		nullTimestamp("paid_at", "When it was paid; NULL while not.", "status_transitions", func(r *domain.InvoicePaymentRow) **int64 { return &r.PaidAt }),
		nullTimestamp("canceled_at", "When it was canceled; NULL while not.", "status_transitions", func(r *domain.InvoicePaymentRow) **int64 { return &r.CanceledAt }),
		timestamp("created", createdComment, "created", func(r *domain.InvoicePaymentRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "invoice", "payment_intent"},
	filters: []string{"status", "invoice", "payment_intent", "currency"},
	brief:   []string{"id", "invoice", "status", "currency", "amount_paid", "payment_intent", "created"},
})

// Invoices are Stripe invoices.
var Invoices = declare(spec[domain.InvoiceRow]{
	table: "invoices", kind: domain.KindInvoices, objectType: "invoice",
	comment: "Stripe invoices as of their latest event. Money in the currency's minor unit.",
	fold:    domain.FoldInvoice,
	source:  func(r *domain.InvoiceRow) *domain.Provenance { return r.Source() },
	// From basil an invoice's events carry neither its payment intent nor its charge: its
	// invoice payments give them. (Not the charges whose invoice is this one: from basil that
	// column is itself derived, and a relation keys on what the object's own events say, which
	// is what a read at a cut finds in the history.)
	reads: []Relation{{Model: InvoicePayments, Column: "invoice"}},
	derive: func(r *domain.InvoiceRow, in inputs, _ env) {
		r.SetPayments(related[domain.InvoicePaymentRow](in, InvoicePayments, r.ID))
	},
	columns: []column[domain.InvoiceRow]{
		text("id", "Stripe invoice ID (in_...).", "id", func(r *domain.InvoiceRow) *string { return &r.ID }),
		nullText("customer", "Stripe customer ID; NULL when none.", "customer", func(r *domain.InvoiceRow) **string { return &r.Customer }),
		nullText("subscription", "Stripe subscription ID (subscription, or from 2025-03-31.basil parent.subscription_details.subscription); NULL for one-off invoices.", "subscription", func(r *domain.InvoiceRow) **string { return &r.Subscription }),
		nullText("status", "draft, open, paid, uncollectible, void; NULL when Stripe sent none.", "status", func(r *domain.InvoiceRow) **string { return &r.Status }),
		nullText("billing_reason", "subscription_create, subscription_cycle, subscription_update, manual, ...; NULL when none.", "billing_reason", func(r *domain.InvoiceRow) **string { return &r.BillingReason }),
		text("currency", currencyComment, "currency", func(r *domain.InvoiceRow) *string { return &r.Currency }),
		integer("amount_due", "Amount due, minor units.", "amount_due", func(r *domain.InvoiceRow) *int64 { return &r.AmountDue }),
		integer("amount_paid", "Amount paid, minor units.", "amount_paid", func(r *domain.InvoiceRow) *int64 { return &r.AmountPaid }),
		integer("amount_remaining", "Amount remaining, minor units.", "amount_remaining", func(r *domain.InvoiceRow) *int64 { return &r.AmountRemaining }),
		integer("total", "Total after discounts and taxes, minor units.", "total", func(r *domain.InvoiceRow) *int64 { return &r.Total }),
		integer("subtotal", "Total before discounts and taxes, minor units.", "subtotal", func(r *domain.InvoiceRow) *int64 { return &r.Subtotal }),
		nullInteger("tax", "Tax, minor units (tax, or from 2025-03-31.basil the sum of total_taxes); NULL when the invoice has no tax.", "tax", func(r *domain.InvoiceRow) **int64 { return &r.Tax }),
		integer("total_discounts", "The sum of total_discount_amounts, minor units; 0 when no discount applies.", "", func(r *domain.InvoiceRow) *int64 { return &r.TotalDiscounts }),
		nullInteger("total_excluding_tax", "Total after discounts, before taxes, minor units; NULL when Stripe sent none.", "total_excluding_tax", func(r *domain.InvoiceRow) **int64 { return &r.TotalExcludingTax }),
		integer("attempt_count", "Payment attempts so far.", "attempt_count", func(r *domain.InvoiceRow) *int64 { return &r.AttemptCount }),
		nullText("charge", "The charge that paid it; NULL when none, or when its latest event does not say (attention).", "charge", func(r *domain.InvoiceRow) **string { return &r.Charge }),
		nullText("payment_intent", "PaymentIntent ID; NULL when none, or when its latest event does not say (attention).", "payment_intent", func(r *domain.InvoiceRow) **string { return &r.PaymentIntent }),
		timestamp("period_start", "Start of the period invoiced.", "period_start", func(r *domain.InvoiceRow) *int64 { return &r.PeriodStart }),
		timestamp("period_end", "End of the period invoiced.", "period_end", func(r *domain.InvoiceRow) *int64 { return &r.PeriodEnd }),
		nullText("attention", "Why a person should look at this row: its charge and payment_intent are not known because its latest event is at an API version (2025-03-31.basil or later) whose invoice does not carry them (its invoice payments do); NULL when nothing.", "", func(r *domain.InvoiceRow) **string { return &r.Attention }),
		boolean("lines_has_more", "True when the invoice's latest event said lines.has_more: invoice_line_items holds only the lines it carried (Stripe's first page), not the rest (GET /v1/invoices/{id}/lines lists them); false when it holds every line.", "lines", func(r *domain.InvoiceRow) *bool { return &r.LinesHasMore }),
		timestamp("created", createdComment, "created", func(r *domain.InvoiceRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "customer", "subscription"},
	filters: []string{"status", "customer", "currency", "subscription"},
	brief:   []string{"id", "customer", "subscription", "status", "currency", "total", "amount_paid", "created"},
	children: []child[domain.InvoiceRow]{{
		Child: Child{
			Table:      "invoice_line_items",
			Comment:    "The line items of each invoice, as the invoice's latest event carried them (lines.data; only the first page when Stripe's invoice says lines.has_more: invoices.lines_has_more is then true). Rewritten with the invoice. Money in the currency's minor unit.",
			Key:        "invoice",
			PrimaryKey: []string{"invoice", "id"},
			Columns: []Column{
				{Name: "invoice", Type: "text", Comment: "The invoice (in_...)."},
				{Name: "id", Type: "text", Comment: "Stripe line item ID (il_...)."},
				{Name: "price", Type: "text", Null: true, Comment: "The price (price_...; price, or from 2025-03-31.basil pricing.price_details.price); NULL when the line has none."},
				{Name: "quantity", Type: "bigint", Null: true, Comment: "Quantity; NULL when Stripe sent none."},
				{Name: "amount", Type: "bigint", Comment: "The line's amount before discounts and taxes, minor units (negative for a credit)."},
				{Name: "currency", Type: "text", Comment: currencyComment},
				{Name: "discount_amount", Type: "bigint", Comment: "The sum of the line's discount_amounts, minor units; 0 when none."},
				{Name: "tax_amount", Type: "bigint", Null: true, Comment: "The sum of the line's tax_amounts (from 2025-03-31.basil its taxes), minor units; NULL when the line carries none."},
				{Name: "period_start", Type: "timestamptz", Comment: "Start of the period the line bills."},
				{Name: "period_end", Type: "timestamptz", Comment: "End of the period the line bills."},
				{Name: "proration", Type: "boolean", Comment: "True for a proration (proration, or from 2025-03-31.basil the parent's)."},
				{Name: "subscription", Type: "text", Null: true, Comment: "The subscription the line bills (subscription, or the parent's); NULL for a one-off item."},
				{Name: "livemode", Type: "boolean", Comment: "The invoice's mode: true live, false test."},
				{Name: "account", Type: "text", Null: true, Comment: "The invoice's Connect account (acct_...); NULL for the platform's own."},
			},
			Indexes: []string{"livemode, account, period_start", "subscription"},
		},
		rows: func(r *domain.InvoiceRow) [][]any {
			out := make([][]any, 0, len(r.Lines))
			for _, l := range r.Lines {
				out = append(out, []any{l.Invoice, l.ID, l.Price, l.Quantity, l.Amount, l.Currency, l.DiscountAmount, l.TaxAmount,
					ts(l.PeriodStart), ts(l.PeriodEnd), l.Proration, l.Subscription, r.Livemode, r.Account})
			}
			return out
		},
	}},
})

// BalanceTransactions are what moved in and out of the Stripe balance, with fees and net: the
// balance reconcile job fetches them (Stripe sends no events for them).
var BalanceTransactions = declare(spec[domain.BalanceTransactionRow]{
	table: "balance_transactions", kind: domain.KindBalanceTransactions, objectType: "balance_transaction",
	comment: "Stripe balance transactions as the balance reconcile job last fetched them (Stripe sends no events for them): every charge, refund, dispute, fee and payout that moved the balance, with Stripe's fee and the net. Amounts in the settlement currency's minor unit.",
	fold:    domain.FoldBalanceTransaction,
	source:  func(r *domain.BalanceTransactionRow) *domain.Provenance { return r.Source() },
	columns: []column[domain.BalanceTransactionRow]{
		text("id", "Stripe balance transaction ID (txn_...).", "id", func(r *domain.BalanceTransactionRow) *string { return &r.ID }),
		integer("amount", "Gross amount, minor units of currency (negative for money out).", "amount", func(r *domain.BalanceTransactionRow) *int64 { return &r.Amount }),
		integer("fee", "Stripe's fees, minor units of currency.", "fee", func(r *domain.BalanceTransactionRow) *int64 { return &r.Fee }),
		jsonColumn("fee_details", "The fee's parts: JSON array of {amount, currency, type, description}; [] when no fee.", "fee_details", func(r *domain.BalanceTransactionRow) *[]domain.FeeDetail { return &r.FeeDetails }),
		integer("net", "amount - fee, minor units of currency: what the balance gained or lost.", "net", func(r *domain.BalanceTransactionRow) *int64 { return &r.Net }),
		text("currency", "The settlement currency (ISO 4217, lowercase): the minor unit of amount, fee and net.", "currency", func(r *domain.BalanceTransactionRow) *string { return &r.Currency }),
		nullDecimal("exchange_rate", "The rate the presentment amount was converted at into currency, exact (numeric, as Stripe sent it); NULL when there was no conversion.", "exchange_rate", func(r *domain.BalanceTransactionRow) **string { return &r.ExchangeRate }),
		text("reporting_category", "Stripe's reporting category: charge, refund, dispute, fee, payout, adjustment, transfer, ...", "reporting_category", func(r *domain.BalanceTransactionRow) *string { return &r.ReportingCategory }),
		text("type", "Stripe's type: charge, refund, adjustment, payout, stripe_fee, ...", "type", func(r *domain.BalanceTransactionRow) *string { return &r.Type }),
		nullText("source", "The object that moved the balance (ch_..., re_..., dp_..., po_... for a payout's own transaction); kept when the ledger does not know it; NULL when Stripe names none.", "source", func(r *domain.BalanceTransactionRow) **string { return &r.SourceID }),
		text("status", "available or pending.", "status", func(r *domain.BalanceTransactionRow) *string { return &r.Status }),
		timestamp("available_on", "When the funds are (or were) available to pay out.", "available_on", func(r *domain.BalanceTransactionRow) *int64 { return &r.AvailableOn }),
		nullText("payout", "The payout whose GET /v1/balance_transactions?payout= listing returned this transaction (recorded by the balance job in its snapshot); NULL until a payout has listed it.", "", func(r *domain.BalanceTransactionRow) **string { return &r.Payout }),
		timestamp("created", createdComment, "created", func(r *domain.BalanceTransactionRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "source", "payout"},
	filters: []string{"type", "reporting_category", "status", "currency", "source", "payout"},
	brief:   []string{"id", "type", "reporting_category", "currency", "amount", "fee", "net", "source", "payout", "created"},
})

// Charges are Stripe charges with their refunds and latest dispute.
var Charges = declare(spec[domain.ChargeRow]{
	table: "charges", kind: domain.KindCharges, objectType: "charge",
	comment: "Stripe charges as of their latest event, with refunds (amount_refunded) and the latest dispute folded in. Money in the currency's minor unit.",
	fold:    func(facts []domain.Fact) (domain.ChargeRow, error) { return domain.FoldCharge(facts, nil) },
	source:  func(r *domain.ChargeRow) *domain.Provenance { return r.Source() },
	// From basil a charge's events do not name its invoice: its payment intent's row does, or
	// the invoice payment made with the charge alone.
	reads: []Relation{{Model: Disputes, Column: "charge"}, {Model: BalanceTransactions, Via: "balance_transaction"},
		{Model: PaymentIntents, Via: "payment_intent"}, {Model: InvoicePayments, Column: "charge"}},
	derive: func(r *domain.ChargeRow, in inputs, _ env) {
		r.SetIntent(related[domain.PaymentIntentRow](in, PaymentIntents, domain.Deref(r.PaymentIntent)), related[domain.InvoicePaymentRow](in, InvoicePayments, r.ID))
		r.SetDisputes(related[domain.DisputeRow](in, Disputes, r.ID))
		r.SetBalanceTransaction(related[domain.BalanceTransactionRow](in, BalanceTransactions, domain.Deref(r.BalanceTransaction)))
	},
	columns: []column[domain.ChargeRow]{
		text("id", "Stripe charge ID (ch_...).", "id", func(r *domain.ChargeRow) *string { return &r.ID }),
		integer("amount", "Amount charged, minor units.", "amount", func(r *domain.ChargeRow) *int64 { return &r.Amount }),
		integer("amount_captured", "Amount captured, minor units.", "amount_captured", func(r *domain.ChargeRow) *int64 { return &r.AmountCaptured }),
		integer("amount_refunded", "Amount refunded so far, minor units.", "amount_refunded", func(r *domain.ChargeRow) *int64 { return &r.AmountRefunded }),
		boolean("refunded", "True when fully refunded.", "refunded", func(r *domain.ChargeRow) *bool { return &r.Refunded }),
		text("currency", currencyComment, "currency", func(r *domain.ChargeRow) *string { return &r.Currency }),
		text("status", "succeeded, pending, failed.", "status", func(r *domain.ChargeRow) *string { return &r.Status }),
		boolean("paid", "True when the charge succeeded or was authorised.", "paid", func(r *domain.ChargeRow) *bool { return &r.Paid }),
		nullText("failure_code", "Stripe's failure code; NULL when none.", "failure_code", func(r *domain.ChargeRow) **string { return &r.FailureCode }),
		nullText("failure_message", "Stripe's failure message; NULL when none.", "failure_message", func(r *domain.ChargeRow) **string { return &r.FailureMessage }),
		nullText("payment_intent", "PaymentIntent ID; NULL when none.", "payment_intent", func(r *domain.ChargeRow) **string { return &r.PaymentIntent }),
		nullText("invoice", "The invoice it paid (invoice, or from 2025-03-31.basil its payment intent's, from the invoice payments); NULL when none, or when not known (attention).", "invoice", func(r *domain.ChargeRow) **string { return &r.Invoice }),
		nullText("customer", "Stripe customer ID; NULL for guest payments.", "customer", func(r *domain.ChargeRow) **string { return &r.Customer }),
		nullText("dispute_id", "The latest dispute on the charge (the last opened); NULL when none.", "", func(r *domain.ChargeRow) **string { return &r.DisputeID }),
		nullText("dispute_status", "That dispute's status (needs_response, under_review, won, lost, ...); NULL when none.", "", func(r *domain.ChargeRow) **string { return &r.DisputeStatus }),
		nullText("attention", "Why a person should look at this row: its invoice is not known because its latest event is at an API version (2025-03-31.basil or later) whose charge does not name it, and no invoice payment of its payment intent has; NULL when nothing.", "", func(r *domain.ChargeRow) **string { return &r.Attention }),
		nullText("balance_transaction", "The charge's balance transaction (txn_...); NULL while Stripe has none.", "balance_transaction", func(r *domain.ChargeRow) **string { return &r.BalanceTransaction }),
		nullInteger("fee", "Stripe's fee, from the balance transaction's row, minor units of settlement_currency; NULL until the ledger holds the transaction.", "", func(r *domain.ChargeRow) **int64 { return &r.Fee }),
		nullInteger("net", "amount less the fee, from the balance transaction's row, minor units of settlement_currency (converted when the charge's currency differs); NULL until the ledger holds the transaction.", "", func(r *domain.ChargeRow) **int64 { return &r.Net }),
		nullText("settlement_currency", "The balance transaction's currency, the minor unit of fee and net; NULL until the ledger holds the transaction.", "", func(r *domain.ChargeRow) **string { return &r.SettlementCurrency }),
		timestamp("created", createdComment, "created", func(r *domain.ChargeRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "customer", "invoice"},
	filters: []string{"status", "customer", "currency", "invoice"},
	brief:   []string{"id", "customer", "status", "currency", "amount", "amount_refunded", "dispute_status", "created"},
})

// Refunds are Stripe refunds (charge.refund.updated and refund.*).
var Refunds = declare(spec[domain.RefundRow]{
	table: "refunds", kind: domain.KindRefunds, objectType: "refund",
	comment: "Stripe refunds as of their latest event (charge.refund.updated and refund.*). Money in the currency's minor unit.",
	fold:    domain.FoldRefund,
	source:  func(r *domain.RefundRow) *domain.Provenance { return r.Source() },
	columns: []column[domain.RefundRow]{
		text("id", "Stripe refund ID (re_...).", "id", func(r *domain.RefundRow) *string { return &r.ID }),
		nullText("charge", "The refunded charge; NULL for a refund without one.", "charge", func(r *domain.RefundRow) **string { return &r.Charge }),
		integer("amount", "Amount refunded, minor units.", "amount", func(r *domain.RefundRow) *int64 { return &r.Amount }),
		text("currency", currencyComment, "currency", func(r *domain.RefundRow) *string { return &r.Currency }),
		nullText("status", "pending, succeeded, failed, canceled, requires_action; NULL when Stripe sent none.", "status", func(r *domain.RefundRow) **string { return &r.Status }),
		nullText("reason", "duplicate, fraudulent, requested_by_customer, ...; NULL when none.", "reason", func(r *domain.RefundRow) **string { return &r.Reason }),
		timestamp("created", "When the refund was created (revenue reports date refunds on this).", "created", func(r *domain.RefundRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "charge"},
	filters: []string{"status", "currency", "charge"},
	brief:   []string{"id", "charge", "status", "currency", "amount", "reason", "created"},
})

// Payouts are Stripe payouts to the bank (payout.*).
var Payouts = declare(spec[domain.PayoutRow]{
	table: "payouts", kind: domain.KindPayouts, objectType: "payout",
	comment: "Stripe payouts as of their latest event (payout.*). Money in the currency's minor unit.",
	fold:    domain.FoldPayout,
	source:  func(r *domain.PayoutRow) *domain.Provenance { return r.Source() },
	columns: []column[domain.PayoutRow]{
		text("id", "Stripe payout ID (po_...).", "id", func(r *domain.PayoutRow) *string { return &r.ID }),
		integer("amount", "Amount paid out, minor units.", "amount", func(r *domain.PayoutRow) *int64 { return &r.Amount }),
		text("currency", currencyComment, "currency", func(r *domain.PayoutRow) *string { return &r.Currency }),
		timestamp("arrival_date", "When the payout is expected to arrive (or arrived) in the bank.", "arrival_date", func(r *domain.PayoutRow) *int64 { return &r.ArrivalDate }),
		text("status", "paid, pending, in_transit, canceled or failed.", "status", func(r *domain.PayoutRow) *string { return &r.Status }),
		nullText("failure_code", "Why it failed (account_closed, ...); NULL unless it failed.", "failure_code", func(r *domain.PayoutRow) **string { return &r.FailureCode }),
		nullText("failure_message", "Stripe's explanation of the failure; NULL unless it failed.", "failure_message", func(r *domain.PayoutRow) **string { return &r.FailureMessage }),
		text("method", "standard or instant.", "method", func(r *domain.PayoutRow) *string { return &r.Method }),
		boolean("automatic", "True for Stripe's automatic payouts (only those list their balance transactions).", "automatic", func(r *domain.PayoutRow) *bool { return &r.Automatic }),
		nullText("reconciliation_status", "Stripe's: not_applicable, in_progress, completed; NULL when Stripe sent none.", "reconciliation_status", func(r *domain.PayoutRow) **string { return &r.ReconciliationStatus }),
		nullText("balance_transaction", "The payout's own balance transaction (txn_...); NULL when Stripe sent none.", "balance_transaction", func(r *domain.PayoutRow) **string { return &r.BalanceTransaction }),
		timestamp("created", createdComment, "created", func(r *domain.PayoutRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "arrival_date"},
	filters: []string{"status", "currency", "method"},
	brief:   []string{"id", "status", "currency", "amount", "arrival_date", "method", "created"},
})

// PaymentIntents are Stripe payment intents (payment_intent.*).
var PaymentIntents = declare(spec[domain.PaymentIntentRow]{
	table: "payment_intents", kind: domain.KindPaymentIntents, objectType: "payment_intent",
	comment: "Stripe payment intents as of their latest event (payment_intent.*). Money in the currency's minor unit.",
	fold:    domain.FoldPaymentIntent,
	source:  func(r *domain.PaymentIntentRow) *domain.Provenance { return r.Source() },
	// From basil a payment intent's events do not name its invoice: its invoice payments do.
	reads: []Relation{{Model: InvoicePayments, Column: "payment_intent"}},
	derive: func(r *domain.PaymentIntentRow, in inputs, _ env) {
		r.SetPayments(related[domain.InvoicePaymentRow](in, InvoicePayments, r.ID))
	},
	columns: []column[domain.PaymentIntentRow]{
		text("id", "Stripe payment intent ID (pi_...).", "id", func(r *domain.PaymentIntentRow) *string { return &r.ID }),
		nullInteger("amount", "Amount intended to be collected, minor units; NULL when Stripe sent none.", "amount", func(r *domain.PaymentIntentRow) **int64 { return &r.Amount }),
		nullInteger("amount_received", "Amount received, minor units; NULL when Stripe sent none.", "amount_received", func(r *domain.PaymentIntentRow) **int64 { return &r.AmountReceived }),
		nullText("currency", "ISO 4217 currency, lowercase (the minor unit of amount); NULL when Stripe sent none.", "currency", func(r *domain.PaymentIntentRow) **string { return &r.Currency }),
		text("status", "requires_payment_method, requires_confirmation, requires_action, processing, requires_capture, canceled, succeeded.", "status", func(r *domain.PaymentIntentRow) *string { return &r.Status }),
		nullText("customer", "Stripe customer ID; NULL for a guest payment.", "customer", func(r *domain.PaymentIntentRow) **string { return &r.Customer }),
		nullText("invoice", "The invoice it pays (invoice, or from 2025-03-31.basil the invoice payments made with it); NULL when none, or when not known (attention).", "invoice", func(r *domain.PaymentIntentRow) **string { return &r.Invoice }),
		nullText("latest_charge", "Its latest charge (ch_...); NULL before one.", "latest_charge", func(r *domain.PaymentIntentRow) **string { return &r.LatestCharge }),
		nullText("attention", "Why a person should look at this row: its invoice is not known because its latest event is at an API version (2025-03-31.basil or later) whose payment intent does not name it, and no invoice payment made with it has; NULL when nothing.", "", func(r *domain.PaymentIntentRow) **string { return &r.Attention }),
		timestamp("created", createdComment, "created", func(r *domain.PaymentIntentRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "customer"},
	filters: []string{"status", "customer", "currency", "invoice"},
	brief:   []string{"id", "customer", "status", "currency", "amount", "amount_received", "created"},
})

// CreditNotes are Stripe credit notes (credit_note.*).
var CreditNotes = declare(spec[domain.CreditNoteRow]{
	table: "credit_notes", kind: domain.KindCreditNotes, objectType: "credit_note",
	comment: "Stripe credit notes as of their latest event (credit_note.*). Money in the currency's minor unit.",
	fold:    domain.FoldCreditNote,
	source:  func(r *domain.CreditNoteRow) *domain.Provenance { return r.Source() },
	columns: []column[domain.CreditNoteRow]{
		text("id", "Stripe credit note ID (cn_...).", "id", func(r *domain.CreditNoteRow) *string { return &r.ID }),
		text("invoice", "The invoice it credits.", "invoice", func(r *domain.CreditNoteRow) *string { return &r.Invoice }),
		nullText("customer", "Stripe customer ID; NULL when Stripe sent none.", "customer", func(r *domain.CreditNoteRow) **string { return &r.Customer }),
		nullText("number", "The credit note's number; NULL when Stripe sent none.", "number", func(r *domain.CreditNoteRow) **string { return &r.Number }),
		text("status", "issued or void.", "status", func(r *domain.CreditNoteRow) *string { return &r.Status }),
		text("type", "pre_payment (before the invoice was paid) or post_payment.", "type", func(r *domain.CreditNoteRow) *string { return &r.Type }),
		nullText("reason", "duplicate, fraudulent, order_change, product_unsatisfactory; NULL when none.", "reason", func(r *domain.CreditNoteRow) **string { return &r.Reason }),
		integer("amount", "Amount credited, tax included, minor units.", "amount", func(r *domain.CreditNoteRow) *int64 { return &r.Amount }),
		integer("subtotal", "Amount before discounts and taxes, minor units.", "subtotal", func(r *domain.CreditNoteRow) *int64 { return &r.Subtotal }),
		integer("total", "Amount after discounts and taxes, minor units.", "total", func(r *domain.CreditNoteRow) *int64 { return &r.Total }),
		text("currency", currencyComment, "currency", func(r *domain.CreditNoteRow) *string { return &r.Currency }),
		nullText("refund", "The refund it made (re_...; refund, or from 2025-03-31.basil the first of refunds[]); NULL when none.", "refund", func(r *domain.CreditNoteRow) **string { return &r.Refund }),
		timestamp("created", createdComment, "created", func(r *domain.CreditNoteRow) *int64 { return &r.Created }),
	},
	indexes: []string{"created DESC, id DESC", "invoice"},
	filters: []string{"status", "invoice", "customer", "currency"},
	brief:   []string{"id", "invoice", "customer", "status", "type", "currency", "total", "created"},
})
