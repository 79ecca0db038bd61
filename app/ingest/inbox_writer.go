package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/sqlstore"
)

// groupSize bounds how many deliveries share one commit.
const groupSize = 128

// ErrInboxStopped is returned for a delivery that arrives after the writer stopped.
var ErrInboxStopped = errors.New("the inbox writer has stopped")

// InboxWriter commits webhook deliveries for the receiving route. Deliveries that
// arrive together share one commit (a group commit), and each is answered only after
// its commit; the INSERT stays prepared on the writer connection. SQLite has one
// writer: without grouping, every answer waits its own turn behind processing.
type InboxWriter struct {
	app        core.App
	reqs       chan storeRequest
	quit       chan struct{}
	done       chan struct{}
	once       sync.Once
	started    atomic.Bool
	statements sqlstore.Statements
}

type storeRequest struct {
	d      Delivery
	now    time.Time
	result chan storeResult
}

type storeResult struct {
	id        string
	duplicate bool
	err       error
}

// NewInboxWriter makes a writer for app; Start runs it.
func NewInboxWriter(app core.App) *InboxWriter {
	return &InboxWriter{app: app, reqs: make(chan storeRequest, groupSize), quit: make(chan struct{}), done: make(chan struct{})}
}

// Start runs the committing goroutine.
func (w *InboxWriter) Start() {
	if w.started.CompareAndSwap(false, true) {
		go w.run()
	}
}

// Store commits d (see StoreDelivery) and returns once it is committed, or with an
// error when it could not be (the caller answers 503 and Shopify retries).
func (w *InboxWriter) Store(ctx context.Context, d Delivery, now time.Time) (id string, duplicate bool, err error) {
	req := storeRequest{d: d, now: now, result: make(chan storeResult, 1)}
	select {
	case w.reqs <- req:
	case <-w.quit:
		return "", false, ErrInboxStopped
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	// Once queued it is committed or failed shortly: wait for the answer even if the
	// client has gone, so that "answered" never runs ahead of "committed".
	r := <-req.result
	return r.id, r.duplicate, r.err
}

// Stop commits what is queued and stops; later deliveries get ErrInboxStopped.
func (w *InboxWriter) Stop() {
	w.once.Do(func() { close(w.quit) })
	if w.started.Load() {
		<-w.done
	}
	w.statements.Close()
}

func (w *InboxWriter) run() {
	defer close(w.done)
	for {
		select {
		case req := <-w.reqs:
			w.commit(w.gather(req))
		case <-w.quit:
			for {
				select {
				case req := <-w.reqs:
					w.commit(w.gather(req))
				default:
					return
				}
			}
		}
	}
}

// gather takes what else is waiting, up to a group.
func (w *InboxWriter) gather(first storeRequest) []storeRequest {
	group := []storeRequest{first}
	for len(group) < groupSize {
		select {
		case req := <-w.reqs:
			group = append(group, req)
		default:
			return group
		}
	}
	return group
}

// commit stores a group in one transaction and answers each request.
func (w *InboxWriter) commit(group []storeRequest) {
	w.statements.PrepareSeen(w.app.NonconcurrentDB())
	results := make([]storeResult, len(group))
	err := w.app.RunInTransaction(func(txApp core.App) error {
		db := w.statements.Begin(txApp.DB())
		for i, req := range group {
			id, dup, err := StoreDelivery(db, req.d, req.now)
			if err != nil {
				return err
			}
			results[i] = storeResult{id: id, duplicate: dup}
		}
		return nil
	})
	for i, req := range group {
		if err != nil {
			results[i] = storeResult{err: fmt.Errorf("commit %d deliveries: %w", len(group), err)}
		}
		req.result <- results[i]
	}
}
