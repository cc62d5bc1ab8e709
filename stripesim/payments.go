package stripesim

import (
	"fmt"
	"math/big"
	"time"
)

// Payment intents, invoice lines with their discounts and taxes, and credit notes. Like
// money.go, everything here draws from money.rng.

// vatPercent are the exclusive taxes the account collects, by the invoice's currency: VAT on
// subscriptions sold in GBP (UK, 20 %) and EUR (Germany, 19 %). Other currencies are untaxed (the
// invoice's tax is null). vatRates is their order, in which their txr_… IDs are drawn.
var (
	vatPercent = map[string]int64{"gbp": 20, "eur": 19}
	vatRates   = []string{"gbp", "eur"}
)

// newIntent creates a payment intent (payment_intent.created), awaiting its payment method as an
// automatically collected invoice's or a Checkout payment's is when it is created.
func (s *Sim) newIntent(id string, customer *string, inv *Invoice, currency string, amount int64, desc string) *PaymentIntent {
	pi := &PaymentIntent{ID: id, Object: "payment_intent", Amount: amount, CaptureMethod: "automatic",
		ConfirmationMethod: "automatic", Created: s.unix(), Currency: currency, Customer: customer, Description: ptr(desc),
		Livemode: s.cfg.Livemode, Metadata: map[string]string{}, PaymentMethodTypes: []string{"card"},
		Status: "requires_payment_method"}
	if inv != nil {
		pi.Invoice = ptr(inv.ID)
	}
	s.money.intents[id] = pi
	s.objs.add("payment_intents", pi.ID, pi.Created, pi)
	s.emitFrom(s.money.rng, "payment_intent.created", pi, pi.ID, nil, inv == nil)
	return pi
}

// intentFor is the charge's payment intent: the invoice's (created at finalization) or a new one.
func (s *Sim) intentFor(ch *Charge, inv *Invoice) *PaymentIntent {
	if ch.PaymentIntent == nil { // an invoice finalized with nothing due, charged after all
		ch.PaymentIntent = ptr(s.money.id("pi"))
		if inv != nil {
			inv.PaymentIntent = ch.PaymentIntent
		}
	}
	if pi := s.money.intents[*ch.PaymentIntent]; pi != nil {
		return pi
	}
	return s.newIntent(*ch.PaymentIntent, ch.Customer, inv, ch.Currency, ch.Amount, ch.Description)
}

// intentOutcome records the charge on its payment intent after the charge's own event.
func (s *Sim) intentOutcome(pi *PaymentIntent, ch *Charge) {
	prev := map[string]any{"status": pi.Status, "amount_received": pi.AmountReceived, "latest_charge": pi.LatestCharge}
	if pi.amountBefore != nil { // its amount changed since its last event (a partial payment of its invoice)
		prev["amount"], pi.amountBefore = *pi.amountBefore, nil
	}
	pi.LatestCharge = ptr(ch.ID)
	if ch.Status == "succeeded" {
		pi.Status, pi.AmountReceived, pi.LastPaymentError = "succeeded", ch.Amount, nil
		s.emitFrom(s.money.rng, "payment_intent.succeeded", pi, pi.ID, prev, false)
		return
	}
	pi.Status = "requires_payment_method"
	pi.LastPaymentError = &PaymentError{Charge: ptr(ch.ID), Code: ch.FailureCode, Message: ch.FailureMessage, Type: "card_error"}
	s.emitFrom(s.money.rng, "payment_intent.payment_failed", pi, pi.ID, prev, false)
}

// itemAmount is what one subscription item bills for a period before discounts: the
// subscription's own amount with that item alone and no discount, so that the lines add up to
// subscriptionAmount whatever the catalogue's price shapes are.
func itemAmount(sub *Subscription, it SubscriptionItem) int64 {
	one := Subscription{Currency: sub.Currency, Items: List[SubscriptionItem]{Object: "list", Data: []SubscriptionItem{it}}}
	return subscriptionAmount(&one)
}

// billLines completes an invoice's lines and totals: the discount (the difference between the
// lines and subscriptionAmount, spread over the lines in proportion to their amounts, the last
// taking the remainder), the tax on each discounted line (rounded half away from zero), and
// subtotal, total_discount_amounts, tax, total_excluding_tax and total from them. amount_due is
// the total.
//
// Proration lines (prorationLines) are not discounted; they are taxed like the others. A total
// below zero (a proration credit larger than the period's charge) leaves nothing due and the rest
// as the customer's credit (ending_balance), which the next invoice's starting_balance applies.
func (s *Sim) billLines(sub *Subscription, inv *Invoice, amount int64) {
	m := s.money
	m.invoices[inv.ID] = inv
	m.billed[sub.ID] = Period{Start: inv.PeriodStart, End: inv.PeriodEnd}
	var subtotal, periodSubtotal int64
	for _, l := range inv.Lines.Data {
		subtotal += l.Amount
		if !l.Proration {
			periodSubtotal += l.Amount
		}
	}
	discount := max(periodSubtotal-amount, 0)
	discountID := ""
	if discount > 0 {
		discountID = "di_" + sub.ID[4:min(len(sub.ID), 28)]
	}
	rate := m.taxRates[inv.Currency]
	var tax, taxable, left int64 = 0, 0, discount
	var lastPositive int
	for i, l := range inv.Lines.Data {
		if l.Amount > 0 && !l.Proration {
			lastPositive = i
		}
	}
	for i := range inv.Lines.Data {
		l := &inv.Lines.Data[i]
		l.Invoice, l.Livemode, l.Metadata, l.Type, l.Discountable = inv.ID, s.cfg.Livemode, map[string]string{}, "subscription", !l.Proration
		if l.Proration {
			l.Type = "invoiceitem" // a proration is a pending invoice item swept onto the invoice
		}
		l.Subscription, l.AmountExcludingTax = ptr(sub.ID), l.Amount
		// tax_rates stays empty: the rate is the subscription's default, which Stripe does not
		// repeat on each line; tax_amounts name it.
		l.DiscountAmounts, l.TaxAmounts, l.TaxRates = []DiscountAmount{}, []TaxAmount{}, []any{}
		var share int64
		if discount > 0 && periodSubtotal > 0 && !l.Proration {
			if i == lastPositive {
				share = left
			} else if l.Amount > 0 {
				share = discount * l.Amount / periodSubtotal
			}
			left -= share
			l.DiscountAmounts = append(l.DiscountAmounts, DiscountAmount{Amount: share, Discount: discountID})
		}
		if rate != "" {
			base := l.Amount - share
			t := roundDiv(base*vatPercent[inv.Currency], 100)
			l.TaxAmounts = append(l.TaxAmounts, TaxAmount{Amount: t, TaxRate: rate, TaxabilityReason: ptr("standard_rated"), TaxableAmount: ptr(base)})
			tax += t
			taxable += base
		}
	}
	inv.Subtotal, inv.SubtotalExcludingTax = subtotal, ptr(subtotal)
	inv.TotalDiscountAmounts, inv.TotalTaxAmounts = []DiscountAmount{}, []TaxAmount{}
	if discount > 0 {
		inv.TotalDiscountAmounts = append(inv.TotalDiscountAmounts, DiscountAmount{Amount: discount, Discount: discountID})
	}
	inv.TotalExcludingTax = ptr(subtotal - discount)
	inv.Total = subtotal - discount
	if rate != "" {
		inv.Tax = ptr(tax)
		inv.TotalTaxAmounts = append(inv.TotalTaxAmounts, TaxAmount{Amount: tax, TaxRate: rate, TaxabilityReason: ptr("standard_rated"), TaxableAmount: ptr(taxable)})
		inv.Total += tax
	}
	bal := m.balance[inv.Customer]
	inv.StartingBalance = bal
	due := inv.Total + bal
	if due < 0 {
		bal, due = due, 0
	} else {
		bal = 0
	}
	inv.EndingBalance = ptr(bal)
	m.balance[inv.Customer] = bal
	inv.AmountDue, inv.AmountRemaining = due, due
}

// itemsChange is one customer.subscription.updated that changed the items.
type itemsChange struct {
	at       int64
	old, new []SubscriptionItem
}

// noteItemsChange records an update of a subscription's items (previous_attributes.items) for
// the next invoice's prorations.
func (s *Sim) noteItemsChange(obj any, prev map[string]any) {
	sub, ok := obj.(*Subscription)
	old, ok2 := prev["items"].(List[SubscriptionItem])
	if !ok || !ok2 {
		return
	}
	s.money.changes[sub.ID] = append(s.money.changes[sub.ID], itemsChange{s.unix(),
		append([]SubscriptionItem(nil), old.Data...), append([]SubscriptionItem(nil), sub.Items.Data...)})
}

func sameItems(a, b []SubscriptionItem) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Price.ID != b[i].Price.ID || a[i].Quantity != b[i].Quantity {
			return false
		}
	}
	return true
}

// prorationLines are what a renewal invoice bills for the item changes made during the period
// the previous invoice billed, as Stripe's default create_prorations does: for each change, a
// credit for the unused time on the old items and a charge for the remaining time on the new
// ones, each the item's period amount × the remaining share of the period (exact, rounded half
// away from zero). Changes made within one second count as one (a change undone at once bills
// nothing).
func (s *Sim) prorationLines(sub *Subscription) []InvoiceLine {
	m := s.money
	changes := m.changes[sub.ID]
	delete(m.changes, sub.ID)
	prev, ok := m.billed[sub.ID]
	if !ok || prev.End <= prev.Start {
		return nil
	}
	var lines []InvoiceLine
	line := func(it SubscriptionItem, at int64, sign int64, what string) {
		share := big.NewRat(prev.End-at, prev.End-prev.Start)
		v := roundHalfAway(new(big.Rat).Mul(big.NewRat(itemAmount(sub, it), 1), share))
		if v == 0 {
			return
		}
		lines = append(lines, InvoiceLine{ID: randomID(m.rng, "il", 14), Object: "line_item", Amount: sign * v, Currency: sub.Currency,
			Description: fmt.Sprintf("%s time on %d × %s after %s", what, it.Quantity, it.Price.Nickname,
				time.Unix(at, 0).UTC().Format("2 Jan 2006")),
			Period: Period{Start: at, End: prev.End}, Price: it.Price, Proration: true, Quantity: it.Quantity, SubscriptionItem: it.ID})
	}
	for i := 0; i < len(changes); {
		j := i
		for j+1 < len(changes) && changes[j+1].at == changes[i].at {
			j++
		}
		at, old, cur := changes[i].at, changes[i].old, changes[j].new
		i = j + 1
		if at < prev.Start || at >= prev.End || sameItems(old, cur) {
			continue
		}
		for _, it := range old {
			line(it, at, -1, "Unused")
		}
		for _, it := range cur {
			line(it, at, 1, "Remaining")
		}
	}
	return lines
}

// finalizeIntent creates a finalized invoice's payment intent; an invoice with nothing due has
// none, as Stripe finalizes it.
func (s *Sim) finalizeIntent(inv *Invoice) {
	if inv.AmountDue == 0 {
		inv.PaymentIntent = nil
		return
	}
	s.newIntent(*inv.PaymentIntent, &inv.Customer, inv, inv.Currency, inv.AmountDue, "Subscription update")
}

// paidWithoutCharge settles an invoice with nothing due (a credit covered it), with no charge.
func (s *Sim) paidWithoutCharge(sub *Subscription, inv *Invoice) {
	rng := s.money.rng
	prev := map[string]any{"status": "open", "paid": false}
	inv.Status, inv.Paid, inv.Attempted, inv.AmountRemaining, inv.NextPaymentAt = "paid", true, true, 0, nil
	s.emitFrom(rng, "invoice.paid", inv, inv.ID, prev, false)
	s.emitFrom(rng, "invoice.payment_succeeded", inv, inv.ID, nil, false)
	if sub.Status == "past_due" || sub.Status == "unpaid" {
		old := sub.Status
		sub.Status = "active"
		s.emitFrom(rng, "customer.subscription.updated", sub, sub.ID, map[string]any{"status": old}, false)
	}
}

// roundDiv is n/d rounded half away from zero (d > 0).
func roundDiv(n, d int64) int64 {
	if n < 0 {
		return -((-n + d/2) / d)
	}
	return (n + d/2) / d
}

// creditNoteFor documents some refunds of invoiced charges with a credit note: post-payment,
// carrying the refund. A full refund of the invoice credits each of its lines (their discounts
// and taxes too); a partial one is a single custom line. Now and then a credit note credited out
// of band is issued first by mistake and voided a day or two later.
func (s *Sim) creditNoteFor(ch *Charge, re *Refund) {
	m := s.money
	if ch.Invoice == nil || m.rng.Float64() >= 0.6 {
		return
	}
	inv := m.invoices[*ch.Invoice]
	if inv == nil {
		return
	}
	reason := []string{"product_unsatisfactory", "order_change", "duplicate"}[m.rng.IntN(3)]
	if m.rng.Float64() < 0.2 {
		mistaken := s.creditNote(inv, re.Amount, nil, "order_change")
		s.after(time.Duration(1+m.rng.IntN(2))*day, func() {
			mistaken.Status, mistaken.VoidedAt = "void", ptr(s.unix())
			s.emitFrom(m.rng, "credit_note.voided", mistaken, mistaken.ID, map[string]any{"status": "issued", "voided_at": nil}, true)
		})
	}
	s.creditNote(inv, re.Amount, re, reason)
}

func (s *Sim) creditNote(inv *Invoice, amount int64, re *Refund, reason string) *CreditNote {
	m := s.money
	m.cnCount[inv.ID]++
	cn := &CreditNote{ID: m.id("cn"), Object: "credit_note", Created: s.unix(), Currency: inv.Currency, Customer: inv.Customer,
		DiscountAmounts: []DiscountAmount{}, EffectiveAt: ptr(s.unix()), Invoice: inv.ID, Livemode: s.cfg.Livemode,
		Metadata: map[string]string{}, Number: fmt.Sprintf("%s-CN-%02d", inv.Number, m.cnCount[inv.ID]),
		Reason: ptr(reason), Status: "issued", TaxAmounts: []TaxAmount{}, Type: "post_payment"}
	cn.PDF = "https://pay.stripe.com/credit_notes/" + cn.ID + "/pdf"
	var lines []CreditNoteLine
	var tax int64
	if amount == inv.Total {
		for _, l := range inv.Lines.Data {
			cl := CreditNoteLine{ID: m.id("cnli"), Object: "credit_note_line_item", Amount: l.Amount, AmountExcludingTax: ptr(l.Amount),
				Description: ptr(l.Description), DiscountAmounts: l.DiscountAmounts, InvoiceLineItem: l.ID, Livemode: s.cfg.Livemode,
				Quantity: ptr(l.Quantity), TaxAmounts: l.TaxAmounts, TaxRates: l.TaxRates, Type: "invoice_line_item"}
			for _, d := range l.DiscountAmounts {
				cl.DiscountAmount += d.Amount
			}
			for _, t := range l.TaxAmounts {
				tax += t.Amount
			}
			cn.Subtotal += cl.Amount
			cn.DiscountAmount += cl.DiscountAmount
			lines = append(lines, cl)
		}
		cn.DiscountAmounts = append(cn.DiscountAmounts, inv.TotalDiscountAmounts...)
		cn.TaxAmounts = append(cn.TaxAmounts, inv.TotalTaxAmounts...)
	} else {
		lines = []CreditNoteLine{{ID: m.id("cnli"), Object: "credit_note_line_item", Amount: amount, AmountExcludingTax: ptr(amount),
			Description: ptr("Partial refund"), DiscountAmounts: []DiscountAmount{}, Livemode: s.cfg.Livemode, Quantity: ptr(int64(1)),
			TaxAmounts: []TaxAmount{}, TaxRates: []any{}, Type: "custom_line_item", UnitAmount: ptr(amount)}}
		cn.Subtotal = amount
	}
	cn.Lines = newList("/v1/credit_notes/"+cn.ID+"/lines", lines)
	cn.SubtotalExcludingTax = ptr(cn.Subtotal)
	cn.TotalExcludingTax = ptr(cn.Subtotal - cn.DiscountAmount)
	cn.Total = cn.Subtotal - cn.DiscountAmount + tax
	cn.Amount = cn.Total
	if re != nil {
		cn.Refund = ptr(re.ID)
	} else {
		cn.OutOfBandAmount = ptr(cn.Amount)
	}
	s.objs.add("credit_notes", cn.ID, cn.Created, cn)
	s.emitFrom(m.rng, "credit_note.created", cn, cn.ID, nil, true)
	return cn
}
