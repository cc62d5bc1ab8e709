package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/projections"
)

// asOfRow is a folded row as ordered JSON, with what filtering and paging need.
type asOfRow struct {
	values  map[string]any
	ordered []any
	cols    []string
	created time.Time
	id      string
}

func (r asOfRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range r.cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		v, err := json.Marshal(r.ordered[i])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// foldAsOf folds the resource's objects (or one) as they stood at t.
func (a *API) foldAsOf(ctx context.Context, res resource, t time.Time, id string) ([]asOfRow, error) {
	cols, rows, err := projections.AsOf(ctx, a.pool, domain.Kind(res.name), t, id)
	if err != nil {
		return nil, err
	}
	out := make([]asOfRow, 0, len(rows))
	for _, row := range rows {
		r := asOfRow{values: map[string]any{}, ordered: row, cols: cols}
		for i, c := range cols {
			r.values[c] = row[i]
		}
		r.id, _ = r.values["id"].(string)
		r.created, _ = r.values["created"].(time.Time)
		out = append(out, r)
	}
	return out, nil
}

// listAsOf serves a list with ?as_of=: the rows are folded from the log, then filtered, ordered
// newest first and paged like the live list.
func (a *API) listAsOf(w http.ResponseWriter, r *http.Request, res resource, lq listQuery) {
	rows, err := a.foldAsOf(r.Context(), res, lq.asOf, "")
	if err != nil {
		a.unavailable(w, err)
		return
	}
	q := r.URL.Query()
	var kept []asOfRow
	for _, row := range rows {
		ok := true
		for _, f := range res.filters {
			if v := q.Get(f); v != "" && fmt.Sprint(row.values[f]) != v {
				ok = false
			}
		}
		if !lq.cutoff.gte.IsZero() && row.created.Before(lq.cutoff.gte) || !lq.cutoff.lt.IsZero() && !row.created.Before(lq.cutoff.lt) {
			ok = false
		}
		if lq.after != nil && !(row.created.Before(lq.after.Created) || row.created.Equal(lq.after.Created) && row.id < lq.after.ID) {
			ok = false
		}
		if ok {
			kept = append(kept, row)
		}
	}
	sort.Slice(kept, func(i, j int) bool {
		if !kept[i].created.Equal(kept[j].created) {
			return kept[i].created.After(kept[j].created)
		}
		return kept[i].id > kept[j].id
	})
	if lq.csv {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		_ = cw.Write(res.columns)
		for _, row := range kept {
			rec := make([]string, len(row.cols))
			for i, v := range row.ordered {
				rec[i] = csvValue(v)
			}
			_ = cw.Write(rec)
		}
		cw.Flush()
		return
	}
	page := listPage{Object: "list", Data: []json.RawMessage{}}
	if len(kept) > lq.limit {
		kept = kept[:lq.limit]
		last := kept[len(kept)-1]
		page.HasMore, page.NextCursor = true, cursor{last.created, last.id}.encode()
	}
	for _, row := range kept {
		b, err := json.Marshal(row)
		if err != nil {
			a.unavailable(w, err)
			return
		}
		page.Data = append(page.Data, b)
	}
	writeJSON(w, http.StatusOK, page)
}

// csvValue renders a folded value as Postgres' ::text would, near enough for a spreadsheet.
func csvValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05+00")
	case *time.Time:
		if x == nil {
			return ""
		}
		return x.UTC().Format("2006-01-02 15:04:05+00")
	case bool, int64, int:
		return fmt.Sprint(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
