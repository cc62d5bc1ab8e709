package stripesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// The money side's API, as Stripe serves it at 2023-10-16: GET /v1/balance_transactions (payout,
// source, type, currency, created), /v1/payouts (status, arrival_date, created, destination),
// /v1/payment_intents (customer, created), /v1/credit_notes (invoice, customer), each with
// Stripe's pagination, and /{id} for each.

func init() {
	nouns["balance_transactions"] = "balance_transaction"
	nouns["payouts"] = "payout"
	nouns["payment_intents"] = "payment_intent"
	nouns["credit_notes"] = "credit_note"
}

// moneyRoutes registers the money side's routes on a server's mux.
func (s *Server) moneyRoutes() {
	s.mux.HandleFunc("GET /v1/balance_transactions", s.listMoney("balance_transactions", btFilter))
	s.mux.HandleFunc("GET /v1/payouts", s.listMoney("payouts", payoutFilter))
	s.mux.HandleFunc("GET /v1/payment_intents", s.listMoney("payment_intents", intentFilter))
	s.mux.HandleFunc("GET /v1/credit_notes", s.listMoney("credit_notes", creditNoteFilter))
	for _, kind := range MoneyKinds {
		s.mux.HandleFunc("GET /v1/"+kind+"/{id}", s.getObject(kind))
	}
}

// A filter reads a list's own parameters; match is then asked of each object, under the sim's
// read lock.
type moneyFilter func(sim *Sim, q url.Values) (match func(any) bool, status int, aerr *apiError)

// btTypes are the balance transaction types Stripe's type filter accepts (spec enum, 2023-10-16).
var btTypes = []string{"adjustment", "advance", "advance_funding", "anticipation_repayment", "application_fee",
	"application_fee_refund", "charge", "climate_order_purchase", "climate_order_refund", "connect_collection_transfer",
	"contribution", "issuing_authorization_hold", "issuing_authorization_release", "issuing_dispute", "issuing_transaction",
	"obligation_outbound", "obligation_reversal_inbound", "payment", "payment_failure_refund", "payment_network_reserve_hold",
	"payment_network_reserve_release", "payment_refund", "payment_reversal", "payment_unreconciled", "payout", "payout_cancel",
	"payout_failure", "refund", "refund_failure", "reserve_transaction", "reserved_funds", "stripe_fee", "stripe_fx_fee",
	"tax_fee", "topup", "topup_reversal", "transfer", "transfer_cancel", "transfer_failure", "transfer_refund"}

var payoutStatuses = []string{"pending", "paid", "failed", "canceled", "in_transit"}

func btFilter(sim *Sim, q url.Values) (func(any) bool, int, *apiError) {
	payout, source, typ, currency := q.Get("payout"), q.Get("source"), q.Get("type"), q.Get("currency")
	if typ != "" && !slices.Contains(btTypes, typ) {
		return nil, http.StatusBadRequest, &apiError{fmt.Sprintf("Invalid type: must be one of %v", btTypes), "type", ""}
	}
	if payout != "" {
		if _, ok := sim.money.listed[payout]; !ok {
			return nil, http.StatusNotFound, &apiError{fmt.Sprintf("No such payout: '%s'", payout), "payout", "resource_missing"}
		}
	}
	return func(v any) bool {
		bt := v.(*BalanceTransaction)
		return (payout == "" || bt.payout == payout) && (source == "" || *bt.Source == source) &&
			(typ == "" || bt.Type == typ) && (currency == "" || bt.Currency == currency)
	}, 0, nil
}

func payoutFilter(_ *Sim, q url.Values) (func(any) bool, int, *apiError) {
	status, destination := q.Get("status"), q.Get("destination")
	if status != "" && !slices.Contains(payoutStatuses, status) {
		return nil, http.StatusBadRequest, &apiError{fmt.Sprintf("Invalid status: must be one of %v", payoutStatuses), "status", ""}
	}
	arrival, aerr := rangeFilter(q, "arrival_date")
	if aerr != nil {
		return nil, http.StatusBadRequest, aerr
	}
	return func(v any) bool {
		po := v.(*Payout)
		return (status == "" || po.Status == status) && (destination == "" || *po.Destination == destination) && arrival(po.ArrivalDate)
	}, 0, nil
}

func intentFilter(_ *Sim, q url.Values) (func(any) bool, int, *apiError) {
	customer := q.Get("customer")
	return func(v any) bool {
		pi := v.(*PaymentIntent)
		return customer == "" || pi.Customer != nil && *pi.Customer == customer
	}, 0, nil
}

func creditNoteFilter(_ *Sim, q url.Values) (func(any) bool, int, *apiError) {
	invoice, customer := q.Get("invoice"), q.Get("customer")
	return func(v any) bool {
		cn := v.(*CreditNote)
		return (invoice == "" || cn.Invoice == invoice) && (customer == "" || cn.Customer == customer)
	}, 0, nil
}

// rangeFilter reads a timestamp filter as Stripe takes them: name=T or name[gt|gte|lt|lte]=T.
func rangeFilter(q url.Values, name string) (func(int64) bool, *apiError) {
	var preds []func(int64) bool
	for _, op := range []string{"", "gt", "gte", "lt", "lte"} {
		key := name
		if op != "" {
			key = name + "[" + op + "]"
		}
		v := q.Get(key)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, &apiError{"Invalid integer: " + v, key, ""}
		}
		switch op {
		case "":
			preds = append(preds, func(c int64) bool { return c == n })
		case "gt":
			preds = append(preds, func(c int64) bool { return c > n })
		case "gte":
			preds = append(preds, func(c int64) bool { return c >= n })
		case "lt":
			preds = append(preds, func(c int64) bool { return c < n })
		case "lte":
			preds = append(preds, func(c int64) bool { return c <= n })
		}
	}
	return func(c int64) bool {
		for _, f := range preds {
			if !f(c) {
				return false
			}
		}
		return true
	}, nil
}

// listMoney serves one of MoneyKinds newest first, rendering only the page's objects.
func (s *Server) listMoney(kind string, filter moneyFilter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p, aerr := parseList(q)
		if aerr != nil {
			stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
			return
		}
		sim := s.simFor(r)
		sim.mu.RLock()
		match, status, aerr := filter(sim, q)
		if aerr != nil {
			sim.mu.RUnlock()
			stripeError(w, status, aerr.code, aerr.message, aerr.param)
			return
		}
		var items []item
		for _, o := range sim.objs.list(kind) {
			if !p.created(o.created) || !match(o.v) {
				continue
			}
			v := o.v
			items = append(items, item{id: o.id, created: o.created, raw: func() json.RawMessage {
				raw, _ := json.Marshal(v)
				return raw
			}})
		}
		pg, aerr := paginate(items, p, nouns[kind])
		sim.mu.RUnlock()
		if aerr != nil {
			stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
			return
		}
		writeList(w, r.URL.Path, pg)
	}
}
