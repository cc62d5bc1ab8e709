package domain

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MRRSettings are the rules of the revenue metrics an account can choose (each default is
// Stripe's Billing analytics). The first four decide the movement log, and are written on every
// movement (String); a change of any of them changes the projection's fingerprint, so the
// ledger recomputes the log from the events. The FX two only decide how metrics convert the
// log into the reporting currency: they change no row.
//
// The zero value is the defaults.
type MRRSettings struct {
	Discounts   string // DiscountsRecurring (forever and repeating coupons), DiscountsOneTime (once), DiscountsBoth
	ChurnAt     string // ChurnAtCancellation, ChurnAtPeriodEnd
	PastDueDays int    // 0: past_due counts until unpaid or canceled; N ≥ 1: churned N days after it became past_due
	Paused      string // PausedCount (paused collection keeps its MRR), PausedZero
	// FXRateDate is the date a movement is converted at: FXPeriodStart or FXReportDate.
	FXRateDate string
	// ReportingCurrency is a lowercase ISO currency, "" for no reporting-currency figures.
	ReportingCurrency string
}

const (
	DiscountsRecurring  = "recurring"
	DiscountsOneTime    = "one_time"
	DiscountsBoth       = "both"
	ChurnAtCancellation = "cancellation"
	ChurnAtPeriodEnd    = "period_end"
	PausedCount         = "count"
	PausedZero          = "zero"
	FXPeriodStart       = "period_start"
	FXReportDate        = "report_date"
)

// MRRSettingsEnv are the environment variables ParseMRRSettings reads, in its order.
var MRRSettingsEnv = []string{"LEDGER_MRR_DISCOUNTS", "LEDGER_MRR_CHURN_AT", "LEDGER_MRR_PAST_DUE_DAYS",
	"LEDGER_MRR_PAUSED", "LEDGER_FX_RATE_DATE", "LEDGER_REPORTING_CURRENCY"}

// DefaultMRRSettings are Stripe's.
func DefaultMRRSettings() MRRSettings {
	return MRRSettings{Discounts: DiscountsRecurring, ChurnAt: ChurnAtCancellation, Paused: PausedCount, FXRateDate: FXPeriodStart}
}

// ParseMRRSettings reads the settings from the environment (getenv is os.Getenv, or a map's
// lookup in tests); an unset or empty variable is its default. A bad value is an error naming
// the variable, the value and what it accepts.
func ParseMRRSettings(getenv func(string) string) (MRRSettings, error) {
	s := DefaultMRRSettings()
	pick := func(name string, into *string, allowed ...string) error {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return nil
		}
		for _, a := range allowed {
			if v == a {
				*into = v
				return nil
			}
		}
		return fmt.Errorf("%s=%q: want one of %s", name, v, strings.Join(allowed, ", "))
	}
	if err := pick("LEDGER_MRR_DISCOUNTS", &s.Discounts, DiscountsRecurring, DiscountsOneTime, DiscountsBoth); err != nil {
		return s, err
	}
	if err := pick("LEDGER_MRR_CHURN_AT", &s.ChurnAt, ChurnAtCancellation, ChurnAtPeriodEnd); err != nil {
		return s, err
	}
	if v := strings.TrimSpace(getenv("LEDGER_MRR_PAST_DUE_DAYS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 3650 {
			return s, fmt.Errorf("LEDGER_MRR_PAST_DUE_DAYS=%q: want 0 (past_due counts until unpaid or canceled) or a number of days from 1 to 3650", v)
		}
		s.PastDueDays = n
	}
	if err := pick("LEDGER_MRR_PAUSED", &s.Paused, PausedCount, PausedZero); err != nil {
		return s, err
	}
	if err := pick("LEDGER_FX_RATE_DATE", &s.FXRateDate, FXPeriodStart, FXReportDate); err != nil {
		return s, err
	}
	if v := strings.TrimSpace(getenv("LEDGER_REPORTING_CURRENCY")); v != "" {
		if !currencyCode.MatchString(v) {
			return s, fmt.Errorf("LEDGER_REPORTING_CURRENCY=%q: want a lowercase three-letter ISO currency such as usd", v)
		}
		s.ReportingCurrency = v
	}
	return s, nil
}

var currencyCode = regexp.MustCompile(`^[a-z]{3}$`)

// WithDefaults fills the unset fields with their defaults.
func (s MRRSettings) WithDefaults() MRRSettings {
	d := DefaultMRRSettings()
	if s.Discounts == "" {
		s.Discounts = d.Discounts
	}
	if s.ChurnAt == "" {
		s.ChurnAt = d.ChurnAt
	}
	if s.Paused == "" {
		s.Paused = d.Paused
	}
	if s.FXRateDate == "" {
		s.FXRateDate = d.FXRateDate
	}
	return s
}

// Validate refuses a value ParseMRRSettings would refuse (for settings built in code).
func (s MRRSettings) Validate() error {
	s = s.WithDefaults()
	env := map[string]string{"LEDGER_MRR_DISCOUNTS": s.Discounts, "LEDGER_MRR_CHURN_AT": s.ChurnAt,
		"LEDGER_MRR_PAST_DUE_DAYS": strconv.Itoa(s.PastDueDays), "LEDGER_MRR_PAUSED": s.Paused,
		"LEDGER_FX_RATE_DATE": s.FXRateDate, "LEDGER_REPORTING_CURRENCY": s.ReportingCurrency}
	_, err := ParseMRRSettings(func(k string) string { return env[k] })
	return err
}

// String is the settings that decide the movement log, in one canonical form, as every
// movement records them: "discounts=recurring churn_at=cancellation past_due_days=0 paused=count".
func (s MRRSettings) String() string {
	s = s.WithDefaults()
	return fmt.Sprintf("discounts=%s churn_at=%s past_due_days=%d paused=%s", s.Discounts, s.ChurnAt, s.PastDueDays, s.Paused)
}

// ParseMRRSettingsString reads String's canonical form back (as the read models record the
// settings they were computed under).
func ParseMRRSettingsString(s string) (MRRSettings, error) {
	env := map[string]string{}
	names := map[string]string{"discounts": "LEDGER_MRR_DISCOUNTS", "churn_at": "LEDGER_MRR_CHURN_AT",
		"past_due_days": "LEDGER_MRR_PAST_DUE_DAYS", "paused": "LEDGER_MRR_PAUSED"}
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || names[k] == "" {
			return MRRSettings{}, fmt.Errorf("MRR settings %q: %q is not one of discounts=, churn_at=, past_due_days=, paused=", s, kv)
		}
		env[names[k]] = v
	}
	return ParseMRRSettings(func(k string) string { return env[k] })
}
