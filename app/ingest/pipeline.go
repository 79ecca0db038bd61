package ingest

import (
	"log/slog"
	"sync"
)

// Pipeline processes committed deliveries in the background so the webhook answers
// as soon as the delivery is stored. It holds ids only: whatever it has not processed
// when the process stops is still pending in webhook_inbox, and the retry job takes it.
type Pipeline struct {
	proc   *Processor
	queue  chan string
	quit   chan struct{}
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
	logger *slog.Logger
}

// NewPipeline makes a pipeline with room for size waiting ids.
func NewPipeline(proc *Processor, size int, logger *slog.Logger) *Pipeline {
	return &Pipeline{proc: proc, queue: make(chan string, size), quit: make(chan struct{}), logger: logger}
}

// Start runs the workers. SQLite has one writer, so more than two gain nothing: one
// decodes while the other commits.
func (q *Pipeline) Start(workers int) {
	for range workers {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			for {
				select {
				case <-q.quit:
					return
				case id := <-q.queue:
					if _, err := q.proc.Process(id); err != nil {
						q.logger.Error("process delivery", slog.String("inbox_id", id), slog.String("error", err.Error()))
					}
				}
			}
		}()
	}
}

// Enqueue hands a committed delivery to the workers without waiting. It returns false
// when the queue is full or stopped; the delivery then waits for the retry job.
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
		return false
	}
}

// Stop lets each worker finish the delivery in hand and returns; queued ids stay pending.
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
