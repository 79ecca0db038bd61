package proof

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/sqlstore"
)

// Event is one proof_page_events row. It holds no IP address and no user agent.
type Event struct {
	// BatchID is empty for not_found.
	BatchID      string
	PublicID     string
	Kind         string
	ReferrerHost string
	DeviceType   string
	At           time.Time
}

// EventRecorderQueue is how many events may wait for the writer before new ones are
// dropped (and counted): minutes of views at any rate one small server answers.
const EventRecorderQueue = 4096

// eventBatchMax bounds the rows one transaction writes, so the writer never holds
// PocketBase's single write connection for long.
const eventBatchMax = 256

// EventRecorder writes proof_page_events off the request path: Record queues an event
// and returns at once; one goroutine writes what is queued, many rows per transaction.
// When the queue is full, or a write fails, the events are dropped, counted and logged
// (a page view is never slowed or failed for the sake of its statistics).
type EventRecorder struct {
	app    core.App
	logger *slog.Logger
	queue  chan Event
	done   chan struct{}

	mu     sync.RWMutex // guards closed against Record racing Close
	closed bool

	written     atomic.Int64
	dropped     atomic.Int64
	lastDropLog atomic.Int64 // unix nanos of the last drop warning
}

// NewEventRecorder starts the writer for app; Close stops it.
func NewEventRecorder(app core.App) *EventRecorder {
	r := &EventRecorder{
		app:    app,
		logger: app.Logger().With(slog.String("component", "proof-events")),
		queue:  make(chan Event, EventRecorderQueue),
		done:   make(chan struct{}),
	}
	go r.run()
	return r
}

// Record queues e without waiting.
func (r *EventRecorder) Record(e Event) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.drop(1, "the recorder is closed")
		return
	}
	select {
	case r.queue <- e:
	default:
		r.drop(1, "the queue is full")
	}
}

// Close writes what is queued and stops the writer. Events recorded afterwards are dropped.
func (r *EventRecorder) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return
	}
	r.closed = true
	close(r.queue)
	r.mu.Unlock()
	<-r.done
	if n := r.dropped.Load(); n > 0 {
		r.logger.Warn("proof page events dropped since start", slog.Int64("dropped", n), slog.Int64("written", r.written.Load()))
	}
}

// Written is how many events have been stored.
func (r *EventRecorder) Written() int64 { return r.written.Load() }

// Dropped is how many events were lost (queue full, recorder closed, or a failed write).
func (r *EventRecorder) Dropped() int64 { return r.dropped.Load() }

func (r *EventRecorder) run() {
	defer close(r.done)
	batch := make([]Event, 0, eventBatchMax)
	for e := range r.queue {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < eventBatchMax {
			select {
			case more, ok := <-r.queue:
				if !ok {
					break fill
				}
				batch = append(batch, more)
			default:
				break fill
			}
		}
		if err := r.write(batch); err != nil {
			total := r.dropped.Add(int64(len(batch)))
			r.logger.Error("proof page events lost: could not write them",
				slog.Int("count", len(batch)), slog.Int64("dropped_total", total), slog.String("error", err.Error()))
			continue
		}
		r.written.Add(int64(len(batch)))
	}
}

func (r *EventRecorder) write(batch []Event) error {
	return r.app.RunInTransaction(func(tx core.App) error {
		for _, e := range batch {
			if err := insertEvent(tx.DB(), e); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertEvent(db dbx.Builder, e Event) error {
	_, err := sqlstore.Insert(db, "proof_page_events", e.At, dbx.Params{
		"batch":         e.BatchID,
		"public_id":     e.PublicID,
		"event":         e.Kind,
		"referrer_host": e.ReferrerHost,
		"device_type":   e.DeviceType,
	})
	if err != nil {
		return fmt.Errorf("proof: record %s event for %s: %w", e.Kind, e.PublicID, err)
	}
	return nil
}

// drop counts lost events and logs them: the first loss at once, then at most one
// warning every 10 seconds with the running total, so a flood cannot flood the logs.
func (r *EventRecorder) drop(n int, why string) {
	total := r.dropped.Add(int64(n))
	now := time.Now().UnixNano()
	last := r.lastDropLog.Load()
	if last != 0 && now-last < int64(10*time.Second) {
		return
	}
	if !r.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	r.logger.Warn("proof page events dropped", slog.Int("count", n), slog.Int64("dropped_total", total), slog.String("reason", why))
}
