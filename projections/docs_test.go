package projections_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/projections"
)

// readModelDocs is docs/read-models.md as the declarations describe the tables: every column
// with its type, whether it can be NULL, the Stripe field it comes from and its comment.
func readModelDocs() string {
	var b strings.Builder
	b.WriteString("# Read models\n\n")
	b.WriteString("Generated from the declarations in `projections/models.go` (`UPDATE_DOCS=1 go test -run TestReadModelDocs ./projections`);\n")
	b.WriteString("the same text is in the database catalog (`\\d+ ledger.charges` in psql, or a BI tool's column descriptions).\n")
	b.WriteString("Money is integer minor units of the row's `currency`; times are `timestamptz` (UTC). A column marked NULL\n")
	b.WriteString("holds NULL when Stripe's value is null or absent — never `''` or `0` standing in for \"none\".\n")
	row := func(c projections.Column) {
		null := "NOT NULL"
		if c.Null {
			null = "NULL"
		}
		from := "derived"
		if c.Stripe != "" {
			from = "`" + c.Stripe + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", c.Name, c.Type, null, from, strings.ReplaceAll(c.Comment, "|", "\\|"))
	}
	for _, m := range projections.Models {
		fmt.Fprintf(&b, "\n## `ledger.%s`\n\n%s Folded from the events of `%s` objects", m.Table, m.Comment, m.ObjectType)
		if len(m.Reads) > 0 {
			var reads []string
			for _, r := range m.Reads {
				if r.Column != "" {
					reads = append(reads, fmt.Sprintf("`%s` whose `%s` is this row's id", r.Model.Table, r.Column))
				} else {
					reads = append(reads, fmt.Sprintf("the `%s` row named by `%s`", r.Model.Table, r.Via))
				}
			}
			fmt.Fprintf(&b, "; reads %s", strings.Join(reads, " and "))
		}
		fmt.Fprintf(&b, ". API: `GET /api/v1/%s` filtered by %s.\n\n", m.Table, "`"+strings.Join(m.Filters, "`, `")+"`")
		b.WriteString("| column | type | null | from `data.object` | meaning |\n|---|---|---|---|---|\n")
		for _, c := range m.Columns {
			row(c)
		}
		for _, c := range m.Children {
			fmt.Fprintf(&b, "\n### `ledger.%s`\n\n%s Rewritten with its %s row (key `%s`).\n\n", c.Table, c.Comment, strings.TrimSuffix(m.Table, "s"), c.Key)
			b.WriteString("| column | type | null | from `data.object` | meaning |\n|---|---|---|---|---|\n")
			for _, col := range c.Columns {
				row(col)
			}
		}
	}
	b.WriteString("\n## History tables (`ledger.<table>_history`)\n\n")
	b.WriteString("Every read model has a history table beside it, made from the same declaration, that `as_of` and `known_at`\n")
	b.WriteString("are answered from (README, \"As of and known at\"): one row per version of an object, with the model's columns\n")
	b.WriteString("(those derived from other read models NULL: the API derives them at the cut) and these:\n\n")
	b.WriteString("| column | type | null | meaning |\n|---|---|---|---|\n")
	for _, name := range []string{"valid_from", "known_from"} {
		c, _ := projections.HistoryColumn(name)
		fmt.Fprintf(&b, "| `%s` | %s | NOT NULL | %s |\n", c.Name, c.Type, c.Comment)
	}
	b.WriteString("\nA child table's history (`ledger.subscription_movements_history`, …) holds its changes: the child's columns and\n\n")
	b.WriteString("| column | type | null | meaning |\n|---|---|---|---|\n")
	for _, name := range []string{"known_from", "gone", "known_to"} {
		c, _ := projections.HistoryColumn(name)
		null := "NOT NULL"
		if c.Null {
			null = "NULL"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", c.Name, c.Type, null, c.Comment)
	}
	return b.String()
}

// docs/read-models.md is what the declarations say; UPDATE_DOCS=1 rewrites it.
func TestReadModelDocs(t *testing.T) {
	t.Parallel()
	path := filepath.Join(pgboot.RepoRoot(), "docs", "read-models.md")
	want := readModelDocs()
	if os.Getenv("UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is not what the declarations say: UPDATE_DOCS=1 go test -run TestReadModelDocs ./projections", path)
	}
}
