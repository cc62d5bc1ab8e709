package query

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
)

// Every row of every read model lives in one mode (live or test) of one account (the platform's
// own, or a connected account's). A list may show several; a metric never adds modes together,
// and adds accounts together only when asked to (account=all), and then says so in every row.

// Scope is the mode and account a request reads.
type Scope struct {
	// Livemode: true live, false test; nil for both (lists only).
	Livemode *bool
	// Account: "" for the platform's own objects, acct_… for a connected account's, AllAccounts
	// for every account.
	Account string
}

// AllAccounts is account=all: every account, the platform's and each connected account's.
const AllAccounts = "all"

// PlatformAccount is how a request names the platform's own objects (account=platform).
const PlatformAccount = "platform"

var accountID = regexp.MustCompile(`^acct_[A-Za-z0-9]{1,64}$`)

// DefaultMetricScope is what a metric reads unless asked otherwise: live mode, the platform's
// own account — what Stripe's Dashboard shows a platform by default.
func DefaultMetricScope() Scope {
	live := true
	return Scope{Livemode: &live}
}

// parseScope reads livemode (true, false, or all) and account (platform, acct_…, or all) from
// v. Lists default to both modes and every account (each row says which it is); metrics default
// to DefaultMetricScope and refuse livemode=all, since no figure adds live money to test money.
func parseScope(v url.Values, metric bool) (Scope, error) {
	var s Scope
	if metric {
		s = DefaultMetricScope()
	} else {
		s.Account = AllAccounts
	}
	switch val := v.Get("livemode"); val {
	case "":
	case "all", "both":
		if metric {
			return s, badRequest("modes_not_mixed", "a metric never adds live and test mode together: ask for livemode=true and livemode=false separately")
		}
		s.Livemode = nil
	default:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return s, badRequest("invalid_livemode", "livemode is true (live mode), false (test mode)%s, not %q", map[bool]string{false: " or all"}[metric], val)
		}
		s.Livemode = &b
	}
	switch val := v.Get("account"); {
	case val == "":
	case val == PlatformAccount:
		s.Account = ""
	case val == AllAccounts:
		s.Account = AllAccounts
	case accountID.MatchString(val):
		s.Account = val
	default:
		return s, badRequest("invalid_account", "account is platform (the platform's own objects), a connected account's ID (acct_...) or all, not %q", val)
	}
	return s, nil
}

// conds are the scope's SQL conditions over alias t, with arg adding a parameter.
func (s Scope) conds(t string, arg func(any) string) []string {
	var out []string
	if s.Livemode != nil {
		out = append(out, fmt.Sprintf("%s.livemode = %s", t, arg(*s.Livemode)))
	}
	switch s.Account {
	case AllAccounts:
	case "":
		out = append(out, t+".account IS NULL")
	default:
		out = append(out, fmt.Sprintf("%s.account = %s", t, arg(s.Account)))
	}
	return out
}

// AccountParam is the scope's account as the account parameter names it.
func (s Scope) AccountParam() string {
	if s.Account == "" {
		return PlatformAccount
	}
	return s.Account
}

// Describe is the scope in words, for answers that must say what a figure includes.
func (s Scope) Describe() string {
	mode := "live and test mode"
	if s.Livemode != nil {
		mode = map[bool]string{true: "live mode", false: "test mode"}[*s.Livemode]
	}
	switch s.Account {
	case AllAccounts:
		return mode + ", every account: one row per account (account null is the platform's own) and rows with account \"all\" adding them up per currency"
	case "":
		return mode + ", the platform's own account (no connected accounts)"
	default:
		return mode + ", connected account " + s.Account + " only"
	}
}
