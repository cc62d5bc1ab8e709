package stripesim

import (
	"container/heap"
	"time"
)

// timeQueue is a min-heap of values by simulated time; values due at the same time come out in
// the order they were pushed, which keeps a seeded run reproducible.
type timeQueue[T any] struct {
	items timedItems[T]
	seq   uint64
}

type timed[T any] struct {
	at  time.Time
	seq uint64
	v   T
}

func (q *timeQueue[T]) push(at time.Time, v T) {
	q.seq++
	heap.Push(&q.items, timed[T]{at: at, seq: q.seq, v: v})
}

// next is the time of the earliest value.
func (q *timeQueue[T]) next() (time.Time, bool) {
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return q.items[0].at, true
}

// popDue removes and returns the earliest value if it is due by t.
func (q *timeQueue[T]) popDue(t time.Time) (time.Time, T, bool) {
	if len(q.items) == 0 || q.items[0].at.After(t) {
		var zero T
		return time.Time{}, zero, false
	}
	it := heap.Pop(&q.items).(timed[T])
	return it.at, it.v, true
}

type timedItems[T any] []timed[T]

func (q timedItems[T]) Len() int { return len(q) }
func (q timedItems[T]) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q timedItems[T]) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *timedItems[T]) Push(x any)   { *q = append(*q, x.(timed[T])) }
func (q *timedItems[T]) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}
