package benchmark

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// qemuARM64 runs a linux/arm64 executable on this machine (Debian's qemu-user-static).
const qemuARM64 = "qemu-aarch64-static"

// arm64Deliveries is the short load the arm64 binary takes under qemu.
const arm64Deliveries = 200

// Arm64Result is the linux/arm64 binary run under qemu-user: its size, its start-up on
// an existing data dir, and the resident memory of the qemu process (qemu's own and
// its translated code included) idle and under a short load. qemu translates every
// instruction, so the times are far slower than a real ARM box's.
type Arm64Result struct {
	Exe string
	// NotMeasured says why nothing was measured ("" when it was).
	NotMeasured string
	Size        int64
	Startup     time.Duration
	Memory      Memory
	// Deliveries were sent from 4 connections and all answered 200 and processed in Took.
	Deliveries int
	Took       time.Duration
}

// MeasureArm64 runs exe under qemu-user: `superuser upsert` (which migrates a fresh data
// dir), then `serve` timed from the exec to /api/health answering 200, then deliveries
// signed orders/create deliveries that must all be answered 200 and end processed.
// Without qemu or exe it returns NotMeasured and no error.
func MeasureArm64(ctx context.Context, exe string, deliveries int, progress func(string, ...any)) (r Arm64Result, err error) {
	r.Exe = exe
	qemu, err := exec.LookPath(qemuARM64)
	if err != nil {
		r.NotMeasured = qemuARM64 + " is not on PATH (apt-get install -y qemu-user-static)"
		return r, nil
	}
	info, err := os.Stat(exe)
	if err != nil {
		r.NotMeasured = fmt.Sprintf("no %s (make build-arm64, or --arm64-exe)", exe)
		return r, nil
	}
	r.Size = info.Size()
	dir, err := os.MkdirTemp("", "opspine-bench-arm64-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	secret, email, password := randomHex(16), "arm64@example.com", randomHex(16)

	progress("arm64: %s under %s: superuser upsert, then serve", exe, qemuARM64)
	upsert := exec.CommandContext(ctx, qemu, exe, "superuser", "upsert", email, password, "--dir", filepath.Join(dir, "pb_data"))
	upsert.Env = childEnv(secret)
	if out, err := upsert.CombinedOutput(); err != nil {
		return r, fmt.Errorf("arm64: superuser upsert under qemu: %w\n%s", err, out)
	}
	c, took, err := startUntilHealthy(ctx, []string{qemu, exe}, dir, secret, 60*time.Second)
	if err != nil {
		return r, fmt.Errorf("arm64: %w", err)
	}
	defer func() {
		if stopErr := c.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("arm64: %w", stopErr)
		}
	}()
	r.Startup = took
	pid := c.cmd.Process.Pid
	r.Memory.Idle, _ = vmRSS(pid)
	if err := c.signIn(ctx, email, password); err != nil {
		return r, fmt.Errorf("arm64: %w", err)
	}
	ds := makeDeliveries("arm64-"+randomHex(4), 0, deliveries, secret)
	skus, err := skusOf(ds)
	if err != nil {
		return r, err
	}
	if err := c.createProducts(ctx, skus); err != nil {
		return r, fmt.Errorf("arm64: %w", err)
	}
	progress("arm64: %d deliveries from 4 connections", len(ds))
	sent := time.Now()
	a := sendClosed(ctx, len(ds), 4, postEach(newClient(4), c.base, ds))
	s := a.summary()
	if s.OK != len(ds) {
		return r, fmt.Errorf("arm64: %d of %d deliveries answered 200 (last error: %s)\n%s", s.OK, len(ds), s.LastError, c.logTail())
	}
	if _, err := c.waitSettled(ctx, a.lastID, time.Minute); err != nil {
		return r, fmt.Errorf("arm64: %w\n%s", err, c.logTail())
	}
	r.Took = time.Since(sent)
	if n, err := c.count(ctx, "processed"); err != nil || n != len(ds) {
		return r, fmt.Errorf("arm64: %d of %d deliveries processed (%v)\n%s", n, len(ds), err, c.logTail())
	}
	r.Deliveries = len(ds)
	r.Memory.afterLoad(pid)
	return r, nil
}
