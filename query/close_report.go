package query

import (
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"
)

// The close report is what finance files: the figures as closed, each adjustment since, and the
// figures with them applied — as CSV (one table, a "row" column saying which part a row is of)
// and as a printable HTML page.

// CloseReportHeader is the CSV report's columns.
var CloseReportHeader = append(append([]string{"row", "period", "livemode", "account", "currency"}, FigureNames...),
	"event_id", "event_type", "event_created", "received_at", "source", "object_type", "object", "position", "closed_at")

// CloseReportRows is the close as CSV rows, the header first: "closed" rows (the frozen figures),
// "adjustment" rows (one per adjustment: its effect), "adjusted" rows (the figures today); then,
// for a close with a reporting currency, "closed_reporting" and "adjusted_reporting" rows (per
// mode and account, in that currency; a figure is empty when a rate was missing).
func CloseReportRows(c Close) [][]string {
	out := [][]string{CloseReportHeader}
	fig := func(kind string, f Figures) []string {
		row := []string{kind, c.Period, strconv.FormatBool(f.Livemode), SpreadsheetSafe(deref(f.Account)), SpreadsheetSafe(f.Currency)}
		for _, n := range FigureNames {
			row = append(row, strconv.FormatInt(f.Get(n), 10))
		}
		return row
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, f := range c.Figures {
		out = append(out, append(fig("closed", f), "", "", "", "", "", "", "", strconv.FormatInt(c.Position, 10), c.ClosedAt.Format(time.RFC3339)))
	}
	for _, a := range c.Adjustments {
		pos := ""
		if a.Position != nil {
			pos = strconv.FormatInt(*a.Position, 10)
		}
		out = append(out, append(fig("adjustment", a.Effect), SpreadsheetSafe(deref(a.EventID)), SpreadsheetSafe(deref(a.EventType)),
			ts(a.Created), ts(a.ReceivedAt), deref(a.Source), deref(a.ObjectType), SpreadsheetSafe(deref(a.Object)), pos, ""))
	}
	for _, f := range c.Adjusted {
		out = append(out, append(fig("adjusted", f), "", "", "", "", "", "", "", "", ""))
	}
	if r := c.Reporting; r != nil {
		rep := func(kind string, f ReportingFigures) []string {
			row := []string{kind, c.Period, strconv.FormatBool(f.Livemode), SpreadsheetSafe(deref(f.Account)), f.Currency}
			for _, n := range FigureNames {
				v := ""
				if p := f.Get(n); p != nil {
					v = strconv.FormatInt(*p, 10)
				}
				row = append(row, v)
			}
			return append(row, "", "", "", "", "", "", "", strconv.FormatInt(c.Position, 10), c.ClosedAt.Format(time.RFC3339))
		}
		for _, f := range r.Figures {
			out = append(out, rep("closed_reporting", f))
		}
		for _, f := range r.Adjusted {
			out = append(out, rep("adjusted_reporting", f))
		}
	}
	return out
}

// Major formats minor units as the currency's major unit (1234 usd -> "12.34"; 1234 jpy ->
// "1234"; 1234 kwd -> "1.234"), exactly: integer arithmetic, no floating point.
func Major(amount int64, currency string) string {
	e := Exponent(strings.ToLower(currency))
	if e == 0 {
		return strconv.FormatInt(amount, 10)
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	unit := int64(1)
	for range e {
		unit *= 10
	}
	return fmt.Sprintf("%s%d.%0*d", sign, amount/unit, e, amount%unit)
}

var closeReportPage = template.Must(template.New("close").Funcs(template.FuncMap{
	"major": Major,
	"fig":   func(f Figures, name string) int64 { return f.Get(name) },
	"rmajor": func(f ReportingFigures, name string) string {
		if v := f.Get(name); v != nil {
			return Major(*v, f.Currency)
		}
		return "" // no rate
	},
	"account": func(a *string) string {
		if a == nil {
			return "platform"
		}
		return *a
	},
	"mode": func(live bool) string {
		if live {
			return "live"
		}
		return "test"
	},
	"ts": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"str":  deref,
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"label": func(name string) string {
		return map[string]string{"gross_revenue": "Gross revenue", "refunds": "Refunds", "dispute_losses": "Disputes lost", "fees": "Fees",
			"net": "Net", "payouts": "Payouts", "open_receivables": "Open receivables", "mrr": "MRR at period end"}[name]
	},
	"currency": func(c *string) string { return deref(c) },
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Close {{.C.Period}} · Stripe ledger</title>
<style>
body { font: 12px/1.4 system-ui, sans-serif; margin: 2em; color: #111; }
h1 { font-size: 20px; margin: 0 0 .3em; } h2 { font-size: 15px; margin: 1.6em 0 .4em; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #ccc; padding: 3px 6px; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.meta { color: #444; } .none { color: #666; font-style: italic; }
@media print { body { margin: 0; } a { color: inherit; text-decoration: none; } tr { break-inside: avoid; } }
</style>
</head>
<body>
<h1>Month-end close: {{.C.Period}}</h1>
<p class="meta" id="meta">Period {{time .C.Start}} to {{time .C.End}} (UTC). Closed {{time .C.ClosedAt}}{{if .C.ClosedBy}} by {{str .C.ClosedBy}}{{end}},
as the ledger knew it at log position {{.C.Position}}. Shows {{.C.Includes}}. Amounts in each currency's major unit.</p>
{{define "figures"}}
<table>
<thead><tr><th>mode</th><th>account</th><th>currency</th>{{range $.Names}}<th class="n">{{label .}}</th>{{end}}</tr></thead>
<tbody>
{{range $f := .Rows}}<tr><td>{{mode $f.Livemode}}</td><td>{{account $f.Account}}</td><td>{{$f.Currency}}</td>{{range $.Names}}<td class="n">{{major (fig $f .) $f.Currency}}</td>{{end}}</tr>
{{else}}<tr><td colspan="11" class="none">no figures</td></tr>{{end}}
</tbody>
</table>
{{end}}
<h2>Figures as closed</h2>
<div id="closed">{{template "figures" (.With .C.Figures)}}</div>
<h2>Adjustments since the close</h2>
<p class="meta">Events appended after position {{.C.Position}} that fall in the period (a reconcile repair, a late webhook), with what each adds to the closed figures.</p>
<table id="adjustments">
<thead><tr><th>event</th><th>type</th><th>object</th><th>created</th><th>arrived</th><th>source</th><th>mode</th><th>account</th><th>currency</th>{{range .Names}}<th class="n">{{label .}}</th>{{end}}</tr></thead>
<tbody>
{{range $a := .C.Adjustments}}<tr><td>{{if $a.EventID}}{{str $a.EventID}}{{else}}(no later event){{end}}</td><td>{{str $a.EventType}}</td><td>{{str $a.Object}}</td><td>{{ts $a.Created}}</td><td>{{ts $a.ReceivedAt}}</td><td>{{str $a.Source}}</td><td>{{mode $a.Livemode}}</td><td>{{account $a.Account}}</td><td>{{currency $a.Currency}}</td>{{range $.Names}}<td class="n">{{if $a.Currency}}{{major (fig $a.Effect .) (currency $a.Currency)}}{{end}}</td>{{end}}</tr>
{{else}}<tr><td colspan="17" class="none">none: the period's figures are as closed</td></tr>{{end}}
</tbody>
</table>
<h2>Figures with the adjustments</h2>
<div id="adjusted">{{template "figures" (.With .C.Adjusted)}}</div>
{{with .C.Reporting}}
<h2>In {{.Currency}} at the rates of {{.RateDate}}</h2>
<p class="meta" id="rates">Rates frozen with the close (units of {{.Currency}} per unit): {{range $i, $r := .Rates}}{{if $i}}, {{end}}{{$r.Currency}} {{if $r.Rate}}{{str $r.Rate}}{{else}}none{{end}}{{end}}.
{{if .MissingRates}}No rate frozen with the close for {{range $i, $c := .MissingRates}}{{if $i}}, {{end}}{{$c}}{{end}}: the figures that need one are blank.{{end}}</p>
{{template "reporting" ($.Reporting "reporting-closed" "As closed" .Figures)}}
{{template "reporting" ($.Reporting "reporting-adjusted" "With the adjustments" .Adjusted)}}
{{end}}
{{define "reporting"}}
<h3>{{.Title}}</h3>
<table id="{{.ID}}">
<thead><tr><th>mode</th><th>account</th><th>currency</th>{{range $.Names}}<th class="n">{{label .}}</th>{{end}}</tr></thead>
<tbody>
{{range $f := .Rows}}<tr><td>{{mode $f.Livemode}}</td><td>{{account $f.Account}}</td><td>{{$f.Currency}}</td>{{range $.Names}}<td class="n">{{rmajor $f .}}</td>{{end}}</tr>
{{else}}<tr><td colspan="11" class="none">no figures</td></tr>{{end}}
</tbody>
</table>
{{end}}
</body>
</html>
`))

type closePage struct {
	C     Close
	Names []string
	Rows  []Figures
}

func (p closePage) With(rows []Figures) closePage { p.Rows = rows; return p }

// reportingTable is one table of a close in the reporting currency.
type reportingTable struct {
	ID, Title string
	Names     []string
	Rows      []ReportingFigures
}

// Reporting is the data of one reporting-currency table.
func (p closePage) Reporting(id, title string, rows []ReportingFigures) reportingTable {
	return reportingTable{ID: id, Title: title, Names: p.Names, Rows: rows}
}

// WriteCloseReport writes the close as the printable HTML page.
func WriteCloseReport(w io.Writer, c Close) error {
	return closeReportPage.Execute(w, closePage{C: c, Names: FigureNames})
}
