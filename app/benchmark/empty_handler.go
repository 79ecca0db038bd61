package benchmark

import (
	"context"
	"fmt"
	"time"
)

// emptyHandlerRoute is the HTTP overhead ceiling: PocketBase's health route does no
// work a webhook could skip (no body, no database), behind the same router, middlewares
// (the activity log among them) and listener as the webhook, in the same child.
const emptyHandlerRoute = "/api/health"

// EmptyHandler is the same load as the webhook's, sent with the same clients to
// emptyHandlerRoute on the same child: what answering costs before a handler does any
// work.
type EmptyHandler struct {
	// Closed is as many requests as the throughput phase's, from as many connections.
	Closed   Answers
	Answered time.Duration
	// Open is the latency phase's rate for its duration, open loop.
	Open Answers
}

// PerSecond is requests answered per second from the throughput phase's connections.
func (e EmptyHandler) PerSecond() float64 { return rate(e.Closed.Sent, e.Answered) }

// measureEmptyHandler sends opts' throughput and latency loads as GET emptyHandlerRoute;
// every request must be answered 200.
func measureEmptyHandler(ctx context.Context, base string, opts Options) (EmptyHandler, error) {
	var e EmptyHandler
	getEach := func(conns int) request {
		client := newClient(conns)
		return func(ctx context.Context, _ int) (int, string, error) {
			status, err := get(ctx, client, base+emptyHandlerRoute, 1)
			return status, "", err
		}
	}
	start := time.Now()
	e.Closed = sendClosed(ctx, opts.Deliveries, opts.Concurrency, getEach(opts.Concurrency)).summary()
	e.Answered = time.Since(start)
	n := opts.latencyRequests()
	e.Open = sendOpen(ctx, n, opts.Rate, getEach(64)).summary()
	for _, a := range []Answers{e.Closed, e.Open} {
		if a.OK != a.Sent {
			return e, fmt.Errorf("bench: empty handler: %d of %d answered 200 (last error: %s)", a.OK, a.Sent, a.LastError)
		}
	}
	return e, nil
}
