package benchmark

import (
	"context"
	"fmt"
	"os"
	"time"
)

// CurvePoint is ingestion and the proof page measured on a child whose database
// already held Orders orders (and their customers, line items, deliveries, ops events,
// and Batches batches), then the cold start on that data dir.
type CurvePoint struct {
	Orders, Batches int
	// Seeding is how long writing the history took (not part of any figure).
	Seeding             time.Duration
	Throughput, Latency Phase
	// Proof is GET /proof/<public id> of the released batches, open loop.
	Proof     Answers
	Memory    Memory
	ColdStart time.Duration
}

// proofMinBytes is the least a proof page can weigh: less is not the page.
const proofMinBytes = 1000

// measureCurvePoint seeds a fresh data dir with orders orders of history, starts a
// child on it, sends the run's deliveries as on the empty database, requests proof
// pages at opts.Rate for opts.Duration, stops the child and times its cold start.
func measureCurvePoint(ctx context.Context, opts Options, exe, secret string, set deliverySet, orders int, progress func(string, ...any)) (p CurvePoint, err error) {
	p.Orders = orders
	dir, err := os.MkdirTemp("", "opspine-bench-curve-")
	if err != nil {
		return p, err
	}
	defer func() {
		if opts.KeepDir {
			progress("kept %s", dir)
		} else if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	progress("%s orders already stored: writing the history", thousands(float64(orders)))
	started := time.Now()
	ids, err := seedHistory(dir, secret, orders)
	if err != nil {
		return p, err
	}
	p.Seeding, p.Batches = time.Since(started), historyBatches(orders)

	srv, err := startChild(ctx, exe, dir, secret)
	if err != nil {
		return p, fmt.Errorf("bench: %s orders: %w", short(orders), err)
	}
	defer func() {
		if stopErr := srv.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	p.Memory.Idle, _ = vmRSS(srv.cmd.Process.Pid)
	if p.Throughput, p.Latency, err = runIngestion(ctx, srv, opts, set, progress); err != nil {
		return p, err
	}
	progress("proof page: %d requests/s for %s over %d released batches", opts.Rate, opts.Duration, len(ids))
	if p.Proof, err = measureProofPages(ctx, srv.base, ids, opts.Rate, opts.Duration); err != nil {
		return p, err
	}
	p.Memory.afterLoad(srv.cmd.Process.Pid)
	if err := srv.stop(); err != nil {
		return p, err
	}
	progress("cold start: %d starts on %s orders", coldStartRuns, short(orders))
	p.ColdStart, err = measureColdStart(ctx, exe, dir, secret)
	return p, err
}

// coldStartOnHistory times the cold start of `exe serve` on a fresh data dir holding
// orders orders of history.
func coldStartOnHistory(ctx context.Context, exe, secret string, orders int) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "opspine-bench-start-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if _, err := seedHistory(dir, secret, orders); err != nil {
		return 0, err
	}
	return measureColdStart(ctx, exe, dir, secret)
}
