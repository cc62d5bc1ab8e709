package query

import "github.com/stripeledger/ledger/projections"

// SpreadsheetSafe neutralises a CSV cell a spreadsheet would read as a formula: one starting
// with =, +, -, @, a tab or a carriage return gets a leading ' (OWASP's advice against CSV
// injection), which spreadsheets show as text and do not display.
func SpreadsheetSafe(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + cell
	}
	return cell
}

// CSVSafe neutralises the text columns of a CSV row of m's columns in place (see
// SpreadsheetSafe). Only text columns: bigint, boolean, timestamptz and jsonb cells are written
// by Postgres from typed values, so they cannot hold a formula — and a negative amount such as
// -500 must stay a number finance can sum.
func CSVSafe(m *projections.Model) func(cells []string) {
	var text []int
	for i, c := range m.Columns {
		if c.Type == "text" {
			text = append(text, i)
		}
	}
	return func(cells []string) {
		for _, i := range text {
			if i < len(cells) {
				cells[i] = SpreadsheetSafe(cells[i])
			}
		}
	}
}
