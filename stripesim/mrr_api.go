package stripesim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// mrrTruth is GET /sim/mrr: the scope's MRR truth (TruthMRR) under the settings in the query —
// discounts, churn_at, past_due_days, paused, fx_rate_date, reporting_currency, each defaulting
// to Stripe's behaviour — and, on a platform, livemode and account as /sim/truth takes them. A
// bad value answers 400 naming the parameter.
func (s *Server) mrrTruth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sim := s.sim
	if s.platform != nil {
		sc := Scope{Livemode: true}
		if v := q.Get("livemode"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				stripeError(w, http.StatusBadRequest, "", "Invalid boolean: "+v, "livemode")
				return
			}
			sc.Livemode = b
		}
		if v := q.Get("account"); v != "" && v != "platform" && v != s.platform.id {
			sc.Account = v
		}
		if sim = s.platform.Sim(sc); sim == nil {
			stripeError(w, http.StatusNotFound, "resource_missing", fmt.Sprintf("No such account: '%s'", sc.Account), "account")
			return
		}
	}
	set := TruthSettings{Discounts: q.Get("discounts"), ChurnAt: q.Get("churn_at"), Paused: q.Get("paused"),
		FXRateDate: q.Get("fx_rate_date"), ReportingCurrency: q.Get("reporting_currency")}
	if v := q.Get("past_due_days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			stripeError(w, http.StatusBadRequest, "", "Invalid integer: "+v, "past_due_days")
			return
		}
		set.PastDueDays = n
	}
	t, err := sim.TruthMRR(set)
	if err != nil {
		param, _, _ := strings.Cut(err.Error(), ":")
		param = strings.ReplaceAll(param, " ", "_") // "reporting currency"
		stripeError(w, http.StatusBadRequest, "", err.Error(), param)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
