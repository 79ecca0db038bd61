// Package benchmark is `opspine bench`: Shopify ingestion measured end to end (signed
// deliveries over HTTP on loopback into a real `opspine serve` child process), printed
// beside the ceiling measured in the same run (plain SQLite inserts of the same
// payloads) and the targets. Figures are reported, never asserted.
package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/opspine/opspine/app/ingest"
)

// Options say how much load each phase sends.
type Options struct {
	// Exe is the opspine binary to run as the server; empty is this executable.
	Exe string
	// Warmup deliveries are sent and processed before the clock starts.
	Warmup int
	// Deliveries are sent as fast as Concurrency connections allow (throughput phase).
	Deliveries  int
	Concurrency int
	// Rate deliveries per second for Duration are sent open-loop (latency phase).
	Rate     int
	Duration time.Duration
	// SettleTimeout bounds the wait for the last delivery of a phase to be processed.
	SettleTimeout time.Duration
	// KeepDir leaves the temp dir (data, server log) in place.
	KeepDir bool
	// Progress receives one line per step; nil is silent.
	Progress io.Writer
}

// DefaultOptions are `make bench`'s.
func DefaultOptions() Options {
	return Options{Warmup: 200, Deliveries: 5000, Concurrency: 16, Rate: 200, Duration: 10 * time.Second,
		SettleTimeout: 3 * time.Minute}
}

// Phase is one phase's answers and what became of the deliveries.
type Phase struct {
	Answers
	// Elapsed is from the first send until nothing was pending; Answered until the last answer.
	Elapsed  time.Duration
	Answered time.Duration
	// Delta of webhook_inbox by status over the phase.
	Inbox inboxCounts
	// Lag is how long after its commit each delivery's processing finished: p50, p99, max,
	// and how many waited longer than the retry job's grace (the live queue was full).
	LagP50, LagP99, LagMax time.Duration
	LaterThanGrace         int
	// ServerCPU and ClientCPU are the CPU time the server and this bench used over the
	// phase (-1 when unknown): both share the machine's cores.
	ServerCPU, ClientCPU time.Duration
	// MachineCPU is the CPU time every process on the machine used over the phase.
	MachineCPU time.Duration
}

// ProcessedPerSecond is deliveries fully processed per second of the phase.
func (p Phase) ProcessedPerSecond() float64 { return rate(p.Inbox.Processed, p.Elapsed) }

// AnsweredPerSecond is deliveries answered per second while sending.
func (p Phase) AnsweredPerSecond() float64 { return rate(p.Sent, p.Answered) }

// Report is everything one run measured.
type Report struct {
	Options Options
	// CPUBusy is the share of all CPUs busy in the second before the run (-1 if unknown).
	CPUBusy    float64
	Payload    PayloadSize
	Ceiling    CeilingResult
	Throughput Phase
	Latency    Phase
}

// PayloadSize describes the order payloads sent.
type PayloadSize struct{ Min, Mean, Max int }

func sizeOf(ds []delivery) PayloadSize {
	if len(ds) == 0 {
		return PayloadSize{}
	}
	s := PayloadSize{Min: len(ds[0].body)}
	total := 0
	for _, d := range ds {
		n := len(d.body)
		total += n
		s.Min, s.Max = min(s.Min, n), max(s.Max, n)
	}
	s.Mean = total / len(ds)
	return s
}

// Problems lists every delivery that was not answered 200 or did not end processed.
// Speed is never a problem here: it is printed beside its target, not asserted.
func (r Report) Problems() []string {
	var out []string
	check := func(name string, p Phase) {
		if p.OK != p.Sent {
			out = append(out, fmt.Sprintf("%s: %d of %d deliveries answered 200 (other statuses %v, %d transport errors, last: %s)",
				name, p.OK, p.Sent, p.Other, p.Errors, p.LastError))
		}
		if p.Inbox.Processed != p.Sent || p.Inbox.Pending != 0 || p.Inbox.Failed != 0 || p.Inbox.Dead != 0 || p.Inbox.Skipped != 0 {
			out = append(out, fmt.Sprintf("%s: of %d deliveries %d processed, %d pending, %d failed, %d dead, %d skipped",
				name, p.Sent, p.Inbox.Processed, p.Inbox.Pending, p.Inbox.Failed, p.Inbox.Dead, p.Inbox.Skipped))
		}
	}
	check("throughput phase", r.Throughput)
	check("latency phase", r.Latency)
	return out
}

// Run measures the ceiling, then starts the server and runs warm-up, throughput and
// latency phases against it. The temp dir and the server are gone when it returns.
func Run(ctx context.Context, opts Options) (rep Report, err error) {
	rep.Options = opts
	rep.CPUBusy = cpuBusy()
	if opts.Deliveries < 1 || opts.Concurrency < 1 || opts.Rate < 1 || opts.Duration <= 0 || opts.Warmup < 0 {
		return rep, errors.New("bench: deliveries, concurrency, rate and duration must be positive")
	}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "bench: "+format+"\n", args...)
		}
	}
	exe := opts.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return rep, fmt.Errorf("bench: find this executable: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "opspine-bench-")
	if err != nil {
		return rep, err
	}
	defer func() {
		if opts.KeepDir {
			progress("kept %s", dir)
			return
		}
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}()

	secret := "shpss_bench_" + randomHex(16)
	runID := randomHex(4)
	latencyCount := opts.Rate * int(opts.Duration/time.Millisecond) / 1000
	latencyCount = max(latencyCount, 1)
	progress("building %d signed order payloads", opts.Warmup+opts.Deliveries+latencyCount)
	warm := makeDeliveries(runID, 0, opts.Warmup, secret)
	load := makeDeliveries(runID, opts.Warmup, opts.Deliveries, secret)
	paced := makeDeliveries(runID, opts.Warmup+opts.Deliveries, latencyCount, secret)
	rep.Payload = sizeOf(load)

	progress("ceiling: %d plain SQLite inserts", len(load))
	if rep.Ceiling, err = measureCeiling(ctx, dir, payloadsOf(load)); err != nil {
		return rep, err
	}

	progress("starting %s serve", exe)
	srv, err := startChild(ctx, exe, dir, secret)
	if err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	defer func() {
		if stopErr := srv.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()

	skus, err := skusOf(load)
	if err != nil {
		return rep, err
	}
	if err := srv.createProducts(ctx, skus); err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	before, err := srv.counts(ctx)
	if err != nil {
		return rep, err
	}
	if opts.Warmup > 0 {
		progress("warm-up: %d deliveries", len(warm))
		if _, err := runPhase(ctx, srv, &before, opts, func() *answers {
			return sendClosed(ctx, newClient(opts.Concurrency), srv.base, warm, opts.Concurrency)
		}); err != nil {
			return rep, fmt.Errorf("bench: warm-up: %w", err)
		}
	}

	progress("throughput: %d deliveries from %d connections", len(load), opts.Concurrency)
	rep.Throughput, err = runPhase(ctx, srv, &before, opts, func() *answers {
		return sendClosed(ctx, newClient(opts.Concurrency), srv.base, load, opts.Concurrency)
	})
	if err != nil {
		return rep, fmt.Errorf("bench: throughput phase: %w", err)
	}

	progress("latency: %d deliveries/s for %s, open loop", opts.Rate, opts.Duration)
	rep.Latency, err = runPhase(ctx, srv, &before, opts, func() *answers {
		return sendOpen(ctx, newClient(64), srv.base, paced, opts.Rate)
	})
	if err != nil {
		return rep, fmt.Errorf("bench: latency phase: %w", err)
	}
	return rep, nil
}

// runPhase sends, waits until nothing is pending and takes the inbox counts; before
// holds the counts at its start and is moved on to the counts at its end.
func runPhase(ctx context.Context, srv *child, before *inboxCounts, opts Options, send func() *answers) (Phase, error) {
	var p Phase
	server0, client0 := cpuTime(srv.cmd.Process.Pid), cpuTime(0)
	machine0, _ := machineCPU()
	start := time.Now()
	a := send()
	p.Answered = time.Since(start)
	p.Answers = a.summary()
	settled, settleErr := srv.waitSettled(ctx, a.lastID, opts.SettleTimeout)
	if settleErr != nil && !errors.Is(settleErr, errNotSettled) {
		return p, settleErr
	}
	p.Elapsed = settled.Sub(start)
	p.ServerCPU, p.ClientCPU, p.MachineCPU = -1, -1, -1
	if server1, client1 := cpuTime(srv.cmd.Process.Pid), cpuTime(0); server0 >= 0 && server1 >= 0 && client0 >= 0 && client1 >= 0 {
		p.ServerCPU, p.ClientCPU = server1-server0, client1-client0
	}
	if machine1, _ := machineCPU(); machine0 >= 0 && machine1 >= 0 {
		p.MachineCPU = machine1 - machine0
	}
	after, err := srv.counts(ctx)
	if err != nil {
		return p, err
	}
	p.Inbox = inboxCounts{
		Pending:   after.Pending,
		Processed: after.Processed - before.Processed,
		Failed:    after.Failed - before.Failed,
		Dead:      after.Dead - before.Dead,
		Skipped:   after.Skipped - before.Skipped,
	}
	*before = after
	lags, err := srv.lags(ctx, start.Truncate(time.Millisecond))
	if err != nil {
		return p, err
	}
	slices.Sort(lags)
	p.LagP50, p.LagP99 = percentile(lags, 50), percentile(lags, 99)
	if len(lags) > 0 {
		p.LagMax = lags[len(lags)-1]
	}
	for _, l := range lags {
		if l > ingest.PendingGrace {
			p.LaterThanGrace++
		}
	}
	return p, settleErr
}
