package ingest

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/retry"
)

// batchSize bounds how many deliveries share one commit.
const batchSize = 64

// storeBackoff spaces the pipeline's own retries while the database refuses its
// commits (a full disk, say): soon after space returns, pending deliveries are
// processed without waiting for the webhook-retry job.
var storeBackoff = retry.Backoff{Base: 250 * time.Millisecond, Max: 10 * time.Second}

// Pipeline processes committed deliveries in the background so the webhook answers
// as soon as the delivery is stored. It holds ids only: whatever it has not processed
// when the process stops is still pending in webhook_inbox, and the retry job takes it.
// When a burst overflows its queue it remembers, and once the queue is drained it
// fetches the pending rows it could not hold from the database. When a commit fails
// (the database cannot be written) the deliveries stay pending; the pipeline waits
// with backoff and fetches the pending rows again, until a commit succeeds.
type Pipeline struct {
	proc       *Processor
	queue      chan string
	quit       chan struct{}
	wg         sync.WaitGroup
	mu         sync.RWMutex
	closed     bool
	overflowed atomic.Bool
	failures   atomic.Int32 // commits failed in a row
	logger     *slog.Logger
}

// NewPipeline makes a pipeline with room for size waiting ids.
func NewPipeline(proc *Processor, size int, logger *slog.Logger) *Pipeline {
	return &Pipeline{proc: proc, queue: make(chan string, size), quit: make(chan struct{}), logger: logger}
}

// Start runs the workers. SQLite has one writer, so more than two gain nothing: one
// reads the next batch while the other commits. They begin with whatever a stopped
// process left pending.
func (q *Pipeline) Start(workers int) {
	q.overflowed.Store(true)
	for range workers {
		q.wg.Add(1)
		go q.work()
	}
}

func (q *Pipeline) work() {
	defer q.wg.Done()
	for {
		select {
		case <-q.quit:
			return
		case id := <-q.queue:
			q.process(q.drain(id))
		default:
			if q.overflowed.CompareAndSwap(true, false) {
				q.refill()
				continue
			}
			select {
			case <-q.quit:
				return
			case id := <-q.queue:
				q.process(q.drain(id))
			}
		}
	}
}

// drain takes what else is waiting, up to a batch.
func (q *Pipeline) drain(first string) []string {
	ids := []string{first}
	for len(ids) < batchSize {
		select {
		case id := <-q.queue:
			ids = append(ids, id)
		default:
			return ids
		}
	}
	return ids
}

// refill processes the pending deliveries an overflow left out of the queue, oldest first.
func (q *Pipeline) refill() {
	for {
		var ids []string
		err := q.proc.App.DB().NewQuery(`SELECT id FROM webhook_inbox WHERE status = 'pending'
			ORDER BY next_attempt_at LIMIT {:n}`).Bind(dbx.Params{"n": batchSize}).Column(&ids)
		if err != nil {
			q.logger.Error("pipeline: read pending deliveries", slog.String("error", err.Error()))
			return
		}
		if len(ids) == 0 {
			return
		}
		q.process(ids)
		select {
		case <-q.quit:
			return
		default:
		}
		if len(ids) < batchSize {
			return
		}
	}
}

// process works through ids in as many commits as the time budget needs, letting
// waiting webhooks store their deliveries in between.
func (q *Pipeline) process(ids []string) {
	for len(ids) > 0 {
		results, err := q.proc.ProcessBatch(ids)
		if err != nil {
			q.commitFailed(len(ids), err)
			return
		}
		q.failures.Store(0)
		var rest []string
		for _, r := range results {
			if r.Deferred {
				rest = append(rest, r.ID)
			}
		}
		ids = rest
	}
}

// commitFailed logs a failed commit, marks the pending rows as to be fetched again and
// waits before the worker goes on (or until Stop).
func (q *Pipeline) commitFailed(count int, err error) {
	n := int(q.failures.Add(1))
	wait := storeBackoff.Delay(n)
	q.logger.Error("process deliveries", slog.Int("count", count), slog.String("error", err.Error()),
		slog.Int("failed_in_a_row", n), slog.Duration("retry_in", wait))
	q.overflowed.Store(true)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-q.quit:
	case <-t.C:
	}
}

// Enqueue hands a committed delivery to the workers without waiting. It returns false
// when the queue is full (the workers fetch it from the database once they catch up)
// or stopped (the retry job takes it).
func (q *Pipeline) Enqueue(id string) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false
	}
	select {
	case q.queue <- id:
		return true
	default:
		q.overflowed.Store(true)
		return false
	}
}

// Stop lets each worker finish the batch in hand and returns; queued ids stay pending.
func (q *Pipeline) Stop() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	close(q.quit)
	q.mu.Unlock()
	q.wg.Wait()
}
