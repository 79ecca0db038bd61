//go:build linux

package benchmark

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The linux/arm64 binary that `make build-arm64` writes runs under qemu-user far enough
// to serve /api/health and take one signed orders/create delivery to processed. It logs
// the binary's size, its start-up time and the resident memory of the qemu process idle
// and after the delivery, measured as `opspine bench` does; no figure is asserted.
// Without qemu the test fails (CI installs it), never skips.
func TestArm64BinaryServesUnderQemu(t *testing.T) {
	if _, err := exec.LookPath(qemuARM64); err != nil {
		t.Fatalf("%s is not on PATH; install it with: apt-get install -y qemu-user-static", qemuARM64)
	}
	exe := buildArm64(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := MeasureArm64(ctx, exe, 1, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if r.NotMeasured != "" || r.Deliveries != 1 {
		t.Fatalf("not measured: %s (%d deliveries processed)", r.NotMeasured, r.Deliveries)
	}
	t.Logf("linux/arm64 binary: %.1f MiB (%d bytes)", mb(r.Size), r.Size)
	t.Logf("start-up under qemu-user to a healthy /api/health: %s", r.Startup.Round(time.Millisecond))
	t.Logf("delivery answered 200 and processed under qemu-user in %s", r.Took.Round(time.Millisecond))
	t.Logf("resident memory of the qemu process (VmRSS): idle %.1f MiB, after the delivery %.1f MiB (peak VmHWM %.1f MiB)",
		mb(r.Memory.Idle), mb(r.Memory.AfterLoad), mb(r.Memory.Peak))
}

// buildArm64 runs `make build-arm64` from the module root with the binary written to a
// temp dir, so the test builds exactly what the Makefile target does.
func buildArm64(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	exe := filepath.Join(t.TempDir(), "opspine-linux-arm64")
	build := exec.Command("make", "--no-print-directory", "build-arm64", "BIN_ARM64="+exe)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build-arm64: %v\n%s", err, out)
	}
	return exe
}
