package reconcile

import (
	"encoding/json"
	"time"

	"github.com/stripeledger/ledger/domain"
)

// Progress is how far a run has gone, reported after each page (Options.Progress).
//
// Stripe's lists give no totals, so Done is an estimate: each scope counts the same, each kind
// of a scope the same, and within a kind the share of time already walked back, since lists
// come newest first: (newest created − created reached) / (newest created − origin). The origin
// is the connected account's own creation (GET /v1/accounts gives it), or else the oldest
// creation the scope's earlier kinds reached — coupons and customers are listed first, and an
// account's other objects are not older than its first customer; until one is known, the kind
// under way counts as not begun.
type Progress struct {
	Scope      Scope
	Kind       domain.Kind // the kind being listed; "" for the events jobs
	Scopes     int         // scopes in the run
	ScopesDone int
	Objects    int // objects compared so far
	Events     int // events listed so far
	Repaired   int // events and snapshots appended so far
	Done       float64
	Elapsed    time.Duration
}

// Rate is objects (or, for an events job, events) handled per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Objects+p.Events) / p.Elapsed.Seconds()
}

// ETA is the time left at the pace so far; false when nothing is known yet.
func (p Progress) ETA() (time.Duration, bool) {
	if p.Done <= 0.001 || p.Done >= 1 {
		return 0, p.Done >= 1
	}
	return time.Duration(float64(p.Elapsed) * (1 - p.Done) / p.Done), true
}

// progressTracker keeps a run's estimate; nil reports nothing.
type progressTracker struct {
	fn      func(Progress)
	start   time.Time
	scopes  int
	kinds   int
	cur     Progress
	done    int   // scopes done
	kdone   int   // kinds of the current scope done
	origin  int64 // the scope's estimated beginning (Unix), 0 unknown
	oldest  int64 // the oldest created seen in the scope
	newest  int64 // the current kind's first object's created
	reached int64 // the current kind's last object's created
}

func newProgressTracker(fn func(Progress), scopes int, job Job) *progressTracker {
	if fn == nil {
		return nil
	}
	kinds := 1
	if job == JobObjects {
		kinds = len(checkedKinds)
	}
	return &progressTracker{fn: fn, start: time.Now(), scopes: scopes, kinds: kinds}
}

func (t *progressTracker) scope(sc Scope, created int64) {
	if t == nil {
		return
	}
	t.cur.Scope, t.cur.Kind = sc, ""
	t.kdone, t.origin, t.oldest, t.newest, t.reached = 0, created, 0, 0, 0
}

func (t *progressTracker) scopeDone() {
	if t == nil {
		return
	}
	t.done++
	t.kdone = 0
}

func (t *progressTracker) kind(k domain.Kind) {
	if t == nil {
		return
	}
	t.cur.Kind, t.newest, t.reached = k, 0, 0
}

func (t *progressTracker) kindDone() {
	if t == nil {
		return
	}
	t.kdone++
	t.newest, t.reached = 0, 0
	if t.origin == 0 && t.oldest != 0 {
		t.origin = t.oldest
	}
}

// page notes how far back a page of objects (newest first) reached.
func (t *progressTracker) page(items []json.RawMessage) {
	if t == nil || len(items) == 0 {
		return
	}
	var o struct {
		Created int64 `json:"created"`
	}
	if json.Unmarshal(items[0], &o) == nil && t.newest == 0 {
		t.newest = o.Created
	}
	if json.Unmarshal(items[len(items)-1], &o) == nil {
		t.reached = o.Created
		if t.oldest == 0 || o.Created < t.oldest {
			t.oldest = o.Created
		}
	}
}

func (t *progressTracker) report(r *Run) {
	if t == nil {
		return
	}
	within := 0.0
	if t.origin != 0 && t.newest > t.origin && t.reached != 0 {
		within = min(1, max(0, float64(t.newest-t.reached)/float64(t.newest-t.origin)))
	}
	p := t.cur
	p.Scopes, p.ScopesDone = t.scopes, min(t.done, t.scopes)
	p.Objects, p.Events, p.Repaired = r.ObjectsChecked, r.EventsSeen, r.Repaired
	p.Done = (float64(t.done) + (float64(t.kdone)+within)/float64(t.kinds)) / float64(max(1, t.scopes))
	p.Done = min(1, p.Done)
	p.Elapsed = time.Since(t.start)
	t.fn(p)
}
