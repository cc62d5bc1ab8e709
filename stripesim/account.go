package stripesim

import (
	"fmt"
	"slices"
	"time"
)

const day = 24 * time.Hour

func ptr[T any](v T) *T { return &v }

// newCustomer is one arrival: a guest checkout, a Checkout signup or an API signup.
func (s *Sim) newCustomer(n int) {
	currency := sellCurrencies[s.rng.IntN(len(sellCurrencies))]
	appUser := fmt.Sprintf("user_%05d", n)
	switch r := s.rng.Float64(); {
	case r < 0.12:
		s.guestCheckout(currency, appUser)
	case r < 0.55:
		c := s.createCustomer(currency, nil)
		s.checkoutSubscription(c, appUser)
	default:
		c := s.createCustomer(currency, map[string]string{"app_user_id": appUser})
		s.startSubscription(c, map[string]string{"app_user_id": appUser})
	}
}

func (s *Sim) createCustomer(currency string, meta map[string]string) *Customer {
	if meta == nil {
		meta = map[string]string{}
	}
	id := s.newID("cus", 14)
	meta["crm_id"] = "crm_" + id[4:10] // a key only the customer carries, for identity by customer metadata
	c := &Customer{ID: id, Object: "customer", Created: s.unix(), Currency: ptr(currency),
		Email: "customer+" + id[4:10] + "@example.com", Name: "Customer " + id[4:10], Livemode: s.cfg.Livemode, Metadata: meta}
	s.objs.add("customers", c.ID, c.Created, c)
	s.emit("customer.created", c, c.ID, nil, true)
	// Some customers later change their email.
	if s.chance(0.1) {
		s.after(time.Duration(1+s.rng.IntN(40))*day, func() {
			old := c.Email
			c.Email = "new+" + c.Email
			s.emit("customer.updated", c, c.ID, map[string]any{"email": old}, true)
		})
	}
	// Some buy one-off extras.
	if s.chance(0.2) {
		s.after(time.Duration(1+s.rng.IntN(60))*day, func() { s.oneOffCharge(c) })
	}
	if s.quirks.Float64() < secondThoughts {
		s.after(s.secondThoughtsDelay(), func() { s.emailCorrected(c) })
	}
	return c
}

// guestCheckout is a one-off payment through Checkout with no customer object.
func (s *Sim) guestCheckout(currency, appUser string) {
	cs := &CheckoutSession{ID: s.newID("cs", 24), Object: "checkout.session", Created: s.unix(), Currency: currency,
		CustomerCreation: "if_required", Livemode: s.cfg.Livemode, Metadata: map[string]string{}, Mode: "payment",
		PaymentStatus: "paid", Status: "complete", AmountTotal: oneOffAmount(s.rng.IntN(3), currency) * 2}
	if s.chance(0.5) {
		cs.ClientReferenceID = ptr(appUser)
	}
	s.objs.add("checkout_sessions", cs.ID, cs.Created, cs)
	ch := s.charge(nil, nil, currency, cs.AmountTotal, true, "Guest checkout")
	s.emit("checkout.session.completed", cs, cs.ID, nil, false)
	s.maybeRefundOrDispute(ch)
}

// checkoutSubscription signs a customer up through a Checkout session carrying the app's user ID
// in client_reference_id and metadata.
func (s *Sim) checkoutSubscription(c *Customer, appUser string) {
	cs := &CheckoutSession{ID: s.newID("cs", 24), Object: "checkout.session", Created: s.unix(), Currency: *c.Currency,
		Customer: ptr(c.ID), CustomerCreation: "always", ClientReferenceID: ptr(appUser), Livemode: s.cfg.Livemode,
		Metadata: map[string]string{"app_user_id": appUser}, Mode: "subscription", PaymentStatus: "paid", Status: "complete"}
	s.objs.add("checkout_sessions", cs.ID, cs.Created, cs)
	sub := s.startSubscription(c, map[string]string{})
	cs.Subscription = ptr(sub.ID)
	cs.AmountTotal = subscriptionAmount(sub)
	if sub.LatestInvoice != nil {
		cs.AmountTotal = s.money.invoices[*sub.LatestInvoice].Total // its first invoice's, tax included
	}
	if sub.Status == "trialing" {
		cs.PaymentStatus = "no_payment_required"
	}
	s.emit("checkout.session.completed", cs, cs.ID, nil, false)
}

func (s *Sim) startSubscription(c *Customer, meta map[string]string) *Subscription {
	sub := &Subscription{ID: s.newID("sub", 24), Object: "subscription", Created: s.unix(), Currency: *c.Currency,
		Customer: c.ID, CollectionMethod: "charge_automatically", Livemode: s.cfg.Livemode, Metadata: meta,
		StartDate: s.unix(), BillingCycleAnchor: s.unix(), Status: "active", cust: c}
	sub.Items = newList("/v1/subscription_items?subscription="+sub.ID, s.chooseItems(sub))
	s.chooseDiscounts(sub)
	trial := s.chance(0.25)
	if trial {
		end := s.unix() + int64(14*day/time.Second)
		sub.Status, sub.TrialStart, sub.TrialEnd = "trialing", ptr(s.unix()), ptr(end)
		sub.CurrentPeriodStart, sub.CurrentPeriodEnd = s.unix(), end
	} else {
		sub.CurrentPeriodStart, sub.CurrentPeriodEnd = s.unix(), periodEndFor(s.now, primary(sub))
		markDue(sub)
	}
	s.objs.add("subscriptions", sub.ID, sub.Created, sub)
	s.emit("customer.subscription.created", sub, sub.ID, nil, true)
	if !trial {
		s.invoice(sub, "subscription_create")
		markOnceUsed(sub)
	}
	s.at(time.Unix(sub.CurrentPeriodEnd, 0), func() { s.renew(sub) })

	// What this subscriber will do, decided now so the run is reproducible.
	switch r := s.rng.Float64(); {
	case r < 0.2:
		s.after(time.Duration(3+s.rng.IntN(50))*day, func() { s.changePlan(sub) })
	case r < 0.25:
		s.after(time.Duration(5+s.rng.IntN(40))*day, func() { s.pause(sub) })
	case r < 0.40:
		s.after(time.Duration(2+s.rng.IntN(60))*day, func() { s.cancelAtPeriodEnd(sub) })
	case r < 0.45:
		s.after(time.Duration(1+s.rng.IntN(60))*day, func() { s.cancelNow(sub, true) })
	case r < 0.48:
		s.after(time.Duration(10+s.rng.IntN(50))*day, func() { s.retain(sub) })
	}
	// Seat counts grow (and shrink) within periods.
	if p := sub.Items.Data[0].Price.plan; p.maxQty > p.minQty && s.chance(0.25) {
		for range 1 + s.rng.IntN(2) {
			s.after(time.Duration(1+s.rng.IntN(80))*day, func() { s.changeQuantity(sub) })
		}
	}
	// A few customers get a coupon of their own, which their subscriptions without one use.
	if s.chance(0.05) {
		s.after(time.Duration(s.rng.IntN(30))*day+time.Hour, func() { s.giveCustomerDiscount(c) })
	}
	if s.quirks.Float64() < secondThoughts {
		s.after(s.secondThoughtsDelay(), func() { s.cancelAndKeep(sub) })
	}
	if s.quirks.Float64() < secondThoughts {
		s.after(s.secondThoughtsDelay(), func() { s.quantityCorrected(sub) })
	}
	return sub
}

// primary is the recurring of the subscription's first item, which sets its billing period.
func primary(sub *Subscription) *Recurring { return sub.Items.Data[0].Price.Recurring }

// renew runs at the end of each period: cancel if asked, otherwise start the next period and bill
// it (used once coupons come off with the renewal).
func (s *Sim) renew(sub *Subscription) {
	if sub.Status == "canceled" {
		return
	}
	if sub.CancelAtPeriodEnd {
		s.cancelNow(sub, false)
		return
	}
	prev := map[string]any{"current_period_start": sub.CurrentPeriodStart, "current_period_end": sub.CurrentPeriodEnd}
	if sub.Status == "trialing" {
		prev["status"] = "trialing"
		sub.Status = "active"
	}
	s.removeUsedOnceDiscounts(sub, prev)
	sub.CurrentPeriodStart, sub.CurrentPeriodEnd = s.unix(), periodEndFor(s.now, primary(sub))
	markDue(sub)
	s.emit("customer.subscription.updated", sub, sub.ID, prev, false)
	if sub.PauseCollection == nil && sub.Status != "unpaid" {
		s.invoice(sub, "subscription_cycle")
		markOnceUsed(sub)
	}
	s.at(time.Unix(sub.CurrentPeriodEnd, 0), func() { s.renew(sub) })
}

// invoice bills the current period: created, finalized and the first payment attempt, all in
// the same second, as Stripe does for a subscription's first invoice.
func (s *Sim) invoice(sub *Subscription, reason string) {
	amount := subscriptionAmount(sub)
	inv := &Invoice{ID: s.newID("in", 24), Object: "invoice", AmountDue: amount, AmountRemaining: amount,
		BillingReason: reason, Created: s.unix(), Currency: sub.Currency, Customer: sub.Customer, Livemode: s.cfg.Livemode,
		PeriodStart: sub.CurrentPeriodStart, PeriodEnd: sub.CurrentPeriodEnd, Status: "draft", Subscription: ptr(sub.ID),
		Subtotal: amount, Total: amount}
	inv.Number = fmt.Sprintf("INV-%06d", len(s.objs.kinds["invoices"])+1)
	var lines []InvoiceLine
	for _, it := range dueItems(sub) {
		lines = append(lines, InvoiceLine{ID: s.newID("il", 14), Object: "line_item", Amount: lineAmount(sub, it),
			Currency: sub.Currency, Description: describeItem(it),
			Period: Period{Start: sub.CurrentPeriodStart, End: sub.CurrentPeriodEnd}, Price: it.Price, Quantity: lineQuantity(sub, it),
			SubscriptionItem: it.ID})
	}
	if reason == "subscription_cycle" {
		lines = append(lines, s.prorationLines(sub)...)
	}
	inv.Lines = newList("/v1/invoices/"+inv.ID+"/lines", lines)
	s.billLines(sub, inv, amount)
	s.objs.add("invoices", inv.ID, inv.Created, inv)
	sub.LatestInvoice = ptr(inv.ID)
	s.emit("invoice.created", inv, inv.ID, nil, false)
	inv.Status = "open"
	inv.PaymentIntent = ptr(s.newID("pi", 24))
	s.finalizeIntent(inv)
	s.emit("invoice.finalized", inv, inv.ID, map[string]any{"status": "draft", "payment_intent": nil}, false)
	s.pay(sub, inv)
}

// retryDelays is the dunning schedule after a failed invoice payment (Smart Retries-like).
var retryDelays = []time.Duration{3 * day, 5 * day, 7 * day}

func (s *Sim) pay(sub *Subscription, inv *Invoice) {
	if inv.Status != "open" || sub.Status == "canceled" {
		return
	}
	if inv.AmountDue == 0 {
		s.paidWithoutCharge(sub, inv)
		return
	}
	ok := s.chance(0.9)
	if inv.AttemptCount > 0 {
		ok = s.chance(0.5)
	}
	inv.AttemptCount++
	inv.Attempted = true
	amount := inv.AmountDue
	if ok && inv.AmountDue >= 5 && s.accountVersion() >= invoicePaymentsFrom && s.cfg.PartialPayments > 0 &&
		s.payments.Float64() < s.cfg.PartialPayments {
		amount -= s.partialPayment(inv)
	}
	ch := s.charge(&sub.Customer, inv, inv.Currency, amount, ok, "Subscription update")
	if ok {
		prev := map[string]any{"status": "open", "paid": false, "amount_paid": inv.AmountPaid, "amount_remaining": inv.AmountRemaining}
		inv.Status, inv.Paid, inv.AmountPaid, inv.AmountRemaining, inv.NextPaymentAt = "paid", true, inv.AmountDue, 0, nil
		inv.Charge = ptr(ch.ID)
		s.emit("invoice.paid", inv, inv.ID, prev, false)
		s.invoicePaid(inv, ch)
		s.emit("invoice.payment_succeeded", inv, inv.ID, nil, false)
		if sub.Status == "past_due" || sub.Status == "unpaid" {
			old := sub.Status
			sub.Status = "active"
			s.emit("customer.subscription.updated", sub, sub.ID, map[string]any{"status": old}, false)
		}
		s.maybeRefundOrDispute(ch)
		return
	}
	inv.Charge = ptr(ch.ID)
	retry := inv.AttemptCount - 1
	if retry < len(retryDelays) {
		inv.NextPaymentAt = ptr(s.now.Add(retryDelays[retry]).Unix())
	} else {
		inv.NextPaymentAt = nil
	}
	s.emit("invoice.payment_failed", inv, inv.ID, map[string]any{"attempt_count": inv.AttemptCount - 1}, false)
	switch {
	case sub.Status == "active":
		sub.Status = "past_due"
		s.emit("customer.subscription.updated", sub, sub.ID, map[string]any{"status": "active"}, false)
	case retry >= len(retryDelays) && sub.Status == "past_due":
		sub.Status = "unpaid"
		s.emit("customer.subscription.updated", sub, sub.ID, map[string]any{"status": "past_due"}, false)
		inv.Status = "uncollectible"
		s.emit("invoice.marked_uncollectible", inv, inv.ID, map[string]any{"status": "open"}, false)
		// Some customers come back and settle the invoice by hand; the subscription reactivates.
		if s.chance(0.4) {
			s.after(time.Duration(5+s.rng.IntN(20))*day, func() { s.settle(sub, inv) })
		}
	}
	if retry < len(retryDelays) {
		s.after(retryDelays[retry], func() { s.pay(sub, inv) })
	}
}

var declines = []struct{ code, message string }{
	{"card_declined", "Your card was declined."},
	{"insufficient_funds", "Your card has insufficient funds."},
	{"expired_card", "Your card has expired."},
}

func (s *Sim) charge(customer *string, inv *Invoice, currency string, amount int64, ok bool, desc string) *Charge {
	ch := &Charge{ID: s.newID("ch", 24), Object: "charge", Amount: amount, Created: s.unix(), Currency: currency,
		Customer: customer, Description: desc, Livemode: s.cfg.Livemode, Metadata: map[string]string{},
		PaymentIntent: ptr(s.newID("pi", 24))}
	if inv != nil {
		ch.Invoice = ptr(inv.ID)
		if !s.ownIntent {
			ch.PaymentIntent = inv.PaymentIntent
		}
	}
	s.objs.add("charges", ch.ID, ch.Created, ch)
	pi := s.intentFor(ch, inv)
	if ok {
		ch.Status, ch.Paid, ch.Captured, ch.AmountCaptured = "succeeded", true, true, amount
		s.chargeTxn(ch)
		s.emit("charge.succeeded", ch, ch.ID, nil, inv == nil)
	} else {
		d := declines[s.rng.IntN(len(declines))]
		ch.Status, ch.FailureCode, ch.FailureMessage = "failed", ptr(d.code), ptr(d.message)
		s.emit("charge.failed", ch, ch.ID, nil, inv == nil)
	}
	s.intentOutcome(pi, ch)
	return ch
}

func (s *Sim) oneOffCharge(c *Customer) {
	if c.Deleted {
		return
	}
	ch := s.charge(&c.ID, nil, *c.Currency, oneOffAmount(s.rng.IntN(3), *c.Currency)*3, s.chance(0.9), "One-off purchase")
	if ch.Status == "succeeded" {
		s.maybeRefundOrDispute(ch)
	}
}

func (s *Sim) maybeRefundOrDispute(ch *Charge) {
	switch r := s.rng.Float64(); {
	case r < 0.06:
		s.after(time.Duration(1+s.rng.IntN(20))*day, func() { s.refund(ch, s.chance(0.5)) })
	case r < 0.08:
		s.after(time.Duration(3+s.rng.IntN(30))*day, func() { s.dispute(ch) })
	}
}

// refund at API version 2023-10-16: a card refund shows as charge.refunded (the Charge, with
// amount_refunded) and charge.refund.updated (the Refund); no refund.* event.
func (s *Sim) refund(ch *Charge, partial bool) {
	if ch.Refunded || ch.Disputed {
		return
	}
	amount := ch.Amount - ch.AmountRefunded
	if partial {
		amount = amount / 2
	}
	if amount <= 0 {
		return
	}
	re := &Refund{ID: s.newID("re", 24), Object: "refund", Amount: amount, Charge: ch.ID, Created: s.unix(),
		Currency: ch.Currency, Metadata: map[string]string{}, PaymentIntent: ch.PaymentIntent, Reason: ptr("requested_by_customer"), Status: "pending"}
	s.objs.add("refunds", re.ID, re.Created, re)
	s.refundTxn(re)
	prev := map[string]any{"amount_refunded": ch.AmountRefunded, "refunded": ch.Refunded}
	ch.AmountRefunded += amount
	ch.Refunded = ch.AmountRefunded == ch.Amount
	s.emit("charge.refunded", ch, ch.ID, prev, true)
	re.Status = "succeeded"
	s.emit("charge.refund.updated", re, re.ID, map[string]any{"status": "pending"}, false)
	s.creditNoteFor(ch, re)
}

func (s *Sim) dispute(ch *Charge) {
	if ch.Disputed || ch.Refunded {
		return
	}
	dp := &Dispute{ID: s.newID("dp", 24), Object: "dispute", Amount: ch.Amount - ch.AmountRefunded, Charge: ch.ID,
		Created: s.unix(), Currency: ch.Currency, Livemode: s.cfg.Livemode, Metadata: map[string]string{},
		Reason: []string{"fraudulent", "product_not_received", "subscription_canceled"}[s.rng.IntN(3)], Status: "needs_response"}
	s.objs.add("disputes", dp.ID, dp.Created, dp)
	s.disputeTxn(dp)
	ch.Disputed = true
	s.emit("charge.dispute.created", dp, dp.ID, nil, false)
	s.emit("charge.dispute.funds_withdrawn", dp, dp.ID, nil, false)
	s.after(time.Duration(10+s.rng.IntN(40))*day, func() {
		prev := map[string]any{"status": dp.Status}
		won := s.chance(0.4)
		if won {
			dp.Status = "won"
			s.disputeWonTxn(dp)
		} else {
			dp.Status = "lost"
		}
		s.emit("charge.dispute.closed", dp, dp.ID, prev, false)
		if won {
			s.emit("charge.dispute.funds_reinstated", dp, dp.ID, nil, false)
		}
	})
}

// changePlan moves the subscription's first item to another plan of the same cadence (Basic ⇄
// Pro), or, for plans sold by quantity, changes its quantity: an upgrade or a downgrade within the
// period, sent as customer.subscription.updated with the old items in previous_attributes.
func (s *Sim) changePlan(sub *Subscription) {
	if sub.Status == "canceled" {
		return
	}
	first := sub.Items.Data[0].Price
	if (first.plan == planBasic || first.plan == planPro) && s.chance(0.6) {
		to := planPro
		if first.plan == planPro {
			to = planBasic
		}
		if slices.Contains(to.cadences, first.cadence) {
			old := sub.Items
			items := append([]SubscriptionItem(nil), old.Data...)
			items[0].Price = to.price(sub.Currency, first.cadence, false)
			sub.Items = newList(old.URL, items)
			s.emit("customer.subscription.updated", sub, sub.ID, map[string]any{"items": old}, true)
			return
		}
	}
	s.changeQuantity(sub)
}

// changeQuantity sets the first item's quantity to another the plan sells (a seat count, a
// volume); a flat plan goes to between 2 and 5.
func (s *Sim) changeQuantity(sub *Subscription) {
	if sub.Status == "canceled" {
		return
	}
	old := sub.Items
	items := append([]SubscriptionItem(nil), old.Data...)
	p := items[0].Price.plan
	lo, hi := p.minQty, p.maxQty
	if hi <= lo {
		lo, hi = 2, 5
	}
	q := lo + s.rng.Int64N(hi-lo+1)
	if q == items[0].Quantity {
		q = lo + (q-lo+1)%(hi-lo+1)
	}
	items[0].Quantity = q
	sub.Items = newList(old.URL, items)
	s.emit("customer.subscription.updated", sub, sub.ID, map[string]any{"items": old}, true)
}

func (s *Sim) pause(sub *Subscription) {
	if sub.Status == "canceled" || sub.PauseCollection != nil {
		return
	}
	sub.PauseCollection = &PauseCollection{Behavior: "void"}
	s.emit("customer.subscription.updated", sub, sub.ID, map[string]any{"pause_collection": nil}, true)
	s.after(time.Duration(20+s.rng.IntN(40))*day, func() {
		if sub.Status == "canceled" || sub.PauseCollection == nil {
			return
		}
		prev := map[string]any{"pause_collection": sub.PauseCollection}
		sub.PauseCollection = nil
		s.emit("customer.subscription.updated", sub, sub.ID, prev, true)
	})
}

func (s *Sim) cancelAtPeriodEnd(sub *Subscription) {
	if sub.Status == "canceled" || sub.CancelAtPeriodEnd {
		return
	}
	sub.CancelAtPeriodEnd, sub.CancelAt, sub.CanceledAt = true, ptr(sub.CurrentPeriodEnd), ptr(s.unix())
	s.emit("customer.subscription.updated", sub, sub.ID,
		map[string]any{"cancel_at_period_end": false, "cancel_at": nil, "canceled_at": nil}, true)
}

func (s *Sim) cancelNow(sub *Subscription, request bool) {
	if sub.Status == "canceled" {
		return
	}
	sub.Status, sub.EndedAt = "canceled", ptr(s.unix())
	if sub.CanceledAt == nil {
		sub.CanceledAt = ptr(s.unix())
	}
	s.emit("customer.subscription.deleted", sub, sub.ID, nil, request)
}

// invoicePaymentsFrom is the API version from which Stripe sends invoice_payment.paid: an
// account on it or later gets one for each payment that pays an invoice.
const invoicePaymentsFrom = "2025-05-28"

// invoicePaid records the invoice payment ch made of inv, and sends invoice_payment.paid when
// the account's version has the event. The payment is the invoice's payment intent's when it has
// one (Stripe's default payment), else the charge's.
func (s *Sim) invoicePaid(inv *Invoice, ch *Charge) { s.invoicePayment(inv, ch, true) }

// partialPayment pays 40 % of an open invoice with a payment intent of its own, before the
// rest is charged: the invoice's amount_paid and amount_remaining move (invoice.updated) and an
// invoice payment that is not the default records it. It returns the amount paid.
func (s *Sim) partialPayment(inv *Invoice) int64 {
	part := inv.AmountDue * 2 / 5
	s.ownIntent = true
	ch := s.charge(&inv.Customer, inv, inv.Currency, part, true, "Partial payment")
	s.ownIntent = false
	s.invoicePayment(inv, ch, false)
	prev := map[string]any{"amount_paid": inv.AmountPaid, "amount_remaining": inv.AmountRemaining}
	inv.AmountPaid, inv.AmountRemaining = part, inv.AmountDue-part
	s.emit("invoice.updated", inv, inv.ID, prev, false)
	// The invoice's own payment intent now asks for the rest (its success says so).
	if pi := s.money.intents[*inv.PaymentIntent]; pi != nil {
		pi.amountBefore, pi.Amount = ptr(pi.Amount), inv.AmountRemaining
	}
	return part
}

// invoicePayment records a paid invoice payment of ch for inv, for accounts that have them.
func (s *Sim) invoicePayment(inv *Invoice, ch *Charge, isDefault bool) {
	if s.accountVersion() < invoicePaymentsFrom {
		return
	}
	p := &InvoicePayment{ID: randomID(s.payments, "inpay", 24), Object: "invoice_payment", AmountPaid: ptr(ch.Amount),
		AmountRequested: ch.Amount, Created: s.unix(), Currency: inv.Currency, Invoice: inv.ID, IsDefault: isDefault,
		Livemode: s.cfg.Livemode, Payment: AssociatedPayment{Type: "charge", Charge: ptr(ch.ID)}, Status: "paid",
		StatusTransitions: PaymentTransitions{PaidAt: ptr(s.unix())}}
	if inv.PaymentIntent != nil && ch.PaymentIntent != nil && (*ch.PaymentIntent == *inv.PaymentIntent || !isDefault) {
		p.Payment = AssociatedPayment{Type: "payment_intent", PaymentIntent: ch.PaymentIntent}
	}
	s.objs.add("invoice_payments", p.ID, p.Created, p)
	s.emitFrom(s.payments, "invoice_payment.paid", p, p.ID, nil, false)
}

// settle pays an uncollectible invoice out of band and reactivates its unpaid subscription.
func (s *Sim) settle(sub *Subscription, inv *Invoice) {
	if inv.Status != "uncollectible" || sub.Status != "unpaid" {
		return
	}
	ch := s.charge(&sub.Customer, inv, inv.Currency, inv.AmountDue, true, "Subscription update")
	prev := map[string]any{"status": "uncollectible", "paid": false, "amount_paid": inv.AmountPaid, "amount_remaining": inv.AmountRemaining}
	inv.Status, inv.Paid, inv.AmountPaid, inv.AmountRemaining, inv.Charge = "paid", true, inv.AmountDue, 0, ptr(ch.ID)
	s.emit("invoice.paid", inv, inv.ID, prev, true)
	s.invoicePaid(inv, ch)
	sub.Status = "active"
	s.emit("customer.subscription.updated", sub, sub.ID, map[string]any{"status": "unpaid"}, false)
}

// Second thoughts: now and then a change is undone within the same second — a subscriber sets
// cancel at period end and at once keeps the plan, a seat count is mistyped and corrected, a
// customer's email is edited and restored. Stripe sends both updates with the same created, each
// with previous_attributes holding the other's values, so only the state before them says which
// came first (the ordering rule's anchored chain). The object ends as it was. They are drawn
// from s.quirks, IDs included, so that a seed's other objects and events are unchanged by them.
const secondThoughts = 0.02

// secondThoughtsDelay is when they happen: a quarter in the second the object is created (the
// chain is then anchored on the creation), the rest within 60 days.
func (s *Sim) secondThoughtsDelay() time.Duration {
	if s.quirks.IntN(4) == 0 {
		return 0
	}
	return time.Second + time.Duration(s.quirks.Int64N(int64(60*day)))
}

func (s *Sim) cancelAndKeep(sub *Subscription) {
	if sub.Status == "canceled" || sub.CancelAtPeriodEnd {
		return
	}
	cancelAt, canceledAt := sub.CancelAt, sub.CanceledAt
	sub.CancelAtPeriodEnd, sub.CancelAt, sub.CanceledAt = true, ptr(sub.CurrentPeriodEnd), ptr(s.unix())
	s.emitFrom(s.quirks, "customer.subscription.updated", sub, sub.ID,
		map[string]any{"cancel_at_period_end": false, "cancel_at": cancelAt, "canceled_at": canceledAt}, true)
	prev := map[string]any{"cancel_at_period_end": true, "cancel_at": sub.CancelAt, "canceled_at": sub.CanceledAt}
	sub.CancelAtPeriodEnd, sub.CancelAt, sub.CanceledAt = false, cancelAt, canceledAt
	s.emitFrom(s.quirks, "customer.subscription.updated", sub, sub.ID, prev, true)
}

func (s *Sim) quantityCorrected(sub *Subscription) {
	if sub.Status == "canceled" {
		return
	}
	old := sub.Items
	items := append([]SubscriptionItem(nil), old.Data...)
	items[0].Quantity += int64(1 + s.quirks.IntN(9))
	sub.Items = newList(old.URL, items)
	s.emitFrom(s.quirks, "customer.subscription.updated", sub, sub.ID, map[string]any{"items": old}, true)
	mistyped := sub.Items
	sub.Items = old
	s.emitFrom(s.quirks, "customer.subscription.updated", sub, sub.ID, map[string]any{"items": mistyped}, true)
}

func (s *Sim) emailCorrected(c *Customer) {
	if c.Deleted {
		return
	}
	old := c.Email
	c.Email = "typo+" + old
	s.emitFrom(s.quirks, "customer.updated", c, c.ID, map[string]any{"email": old}, true)
	c.Email = old
	s.emitFrom(s.quirks, "customer.updated", c, c.ID, map[string]any{"email": "typo+" + old}, true)
}
