package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stripeledger/ledger/domain"
)

// AppenderConfig tunes group commit. Zero values take the documented defaults.
type AppenderConfig struct {
	// MaxBatch bounds the events written in one transaction. Default 512.
	MaxBatch int
	// MaxBatchBytes bounds the payload bytes in one transaction. Default 8 MiB.
	MaxBatchBytes int
	// MaxWait is how long a writer lingers for more callers after the first one arrives. Under
	// load the queue fills while the previous transaction commits, so batches form without
	// waiting; a linger only helps light, bursty traffic and costs every caller that much
	// latency. Default 0 (take what is queued, never wait).
	MaxWait time.Duration
	// Writers is the number of concurrent append transactions. They all queue on the log's head
	// lock; on 2 cores with 64 callers one writer already keeps both cores busy (batches of 32),
	// and more writers only make smaller batches. Default 1.
	Writers int
	// Timeout bounds one append transaction, so a stalled database fails the batch instead of
	// holding its callers forever. Default 10 s.
	Timeout time.Duration
	// OnBatch, if set, is called after every transaction with its event count, duration and
	// error (for metrics).
	OnBatch func(events int, took time.Duration, err error)
}

func (c *AppenderConfig) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 8 << 20
	}
	if c.Writers <= 0 {
		c.Writers = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("appender is closed")

// Appender gathers concurrent callers' events into shared transactions (group commit). Each caller
// gets its own results only after the transaction holding its events has committed, so an
// answered event is durable; nothing is ever acknowledged from memory.
type Appender struct {
	store *Store
	cfg   AppenderConfig
	queue chan *appendRequest

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	wg     sync.WaitGroup
}

type appendRequest struct {
	events  []domain.Event
	from    Endpoint // the endpoint every event of the request came to ("" for none)
	bytes   int
	results []Result
	err     error
	done    chan struct{}
}

// NewAppender starts the writers. Close stops them.
func NewAppender(store *Store, cfg AppenderConfig) *Appender {
	cfg.setDefaults()
	a := &Appender{store: store, cfg: cfg, queue: make(chan *appendRequest, 4*cfg.MaxBatch)}
	for range cfg.Writers {
		a.wg.Add(1)
		go a.write()
	}
	return a
}

// Append queues events for the next transaction and waits for it to commit. Results and error
// have Store.Append's meaning. If ctx ends first, Append returns ctx's error; the events may still
// be committed afterwards, which is harmless: appends are idempotent by event ID.
func (a *Appender) Append(ctx context.Context, events []domain.Event) ([]Result, error) {
	return a.AppendFrom(ctx, "", events)
}

// AppendFrom appends like Append, every event attributed to the webhook endpoint it came to
// (Store.AppendDelivered): a webhook request is one delivery to one endpoint.
func (a *Appender) AppendFrom(ctx context.Context, from Endpoint, events []domain.Event) ([]Result, error) {
	if len(events) == 0 {
		return nil, nil
	}
	req := &appendRequest{events: events, from: from, done: make(chan struct{})}
	for i := range events {
		req.bytes += len(events[i].Payload)
	}
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case a.queue <- req:
		a.mu.RUnlock()
	case <-ctx.Done():
		a.mu.RUnlock()
		return nil, ctx.Err()
	}
	select {
	case <-req.done:
		return req.results, req.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops accepting events, lets the writers finish everything already queued, and waits.
func (a *Appender) Close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func (a *Appender) write() {
	defer a.wg.Done()
	for first := range a.queue {
		batch := a.gather(first)
		a.commit(batch)
	}
}

// gather takes first plus whatever else is queued, up to the batch bounds, waiting at most
// MaxWait for more.
func (a *Appender) gather(first *appendRequest) []*appendRequest {
	batch := []*appendRequest{first}
	n, size := len(first.events), first.bytes
	var timer <-chan time.Time
	if a.cfg.MaxWait > 0 {
		t := time.NewTimer(a.cfg.MaxWait)
		defer t.Stop()
		timer = t.C
	}
	for n < a.cfg.MaxBatch && size < a.cfg.MaxBatchBytes {
		var req *appendRequest
		var ok bool
		if timer == nil {
			select {
			case req, ok = <-a.queue:
			default:
				return batch
			}
		} else {
			select {
			case req, ok = <-a.queue:
			case <-timer:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = append(batch, req)
		n += len(req.events)
		size += req.bytes
	}
	return batch
}

func (a *Appender) commit(batch []*appendRequest) {
	var events []domain.Event
	var endpoints []Endpoint // nil while no request of the batch names one
	if len(batch) == 1 {
		events = batch[0].events
	} else {
		for _, r := range batch {
			events = append(events, r.events...)
		}
	}
	for _, r := range batch {
		if r.from != "" {
			endpoints = make([]Endpoint, 0, len(events))
			for _, r := range batch {
				for range r.events {
					endpoints = append(endpoints, r.from)
				}
			}
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
	start := time.Now()
	results, err := a.store.AppendDelivered(ctx, events, endpoints)
	cancel()
	if a.cfg.OnBatch != nil {
		a.cfg.OnBatch(len(events), time.Since(start), err)
	}
	if err != nil {
		err = fmt.Errorf("group commit of %d events: %w", len(events), err)
	}
	off := 0
	for _, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.results = results[off : off+len(r.events) : off+len(r.events)]
		}
		off += len(r.events)
		close(r.done)
	}
}
