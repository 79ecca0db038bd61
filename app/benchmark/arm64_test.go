//go:build linux

package benchmark

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// qemuARM64 runs a linux/arm64 executable on this machine (Debian's qemu-user-static).
const qemuARM64 = "qemu-aarch64-static"

// The linux/arm64 binary that `make build-arm64` writes runs under qemu-user far enough
// to serve /api/health and take one signed orders/create delivery to processed. It logs
// the binary's size, its start-up time and the resident memory of the qemu process idle
// and after the delivery. qemu translates every instruction, so the times are far slower
// than a real ARM box and the memory includes qemu's own and its translated code; no
// figure is asserted. Without qemu the test fails (CI installs it), never skips.
func TestArm64BinaryServesUnderQemu(t *testing.T) {
	qemu, err := exec.LookPath(qemuARM64)
	if err != nil {
		t.Fatalf("%s is not on PATH; install it with: apt-get install -y qemu-user-static", qemuARM64)
	}
	exe := buildArm64(t)
	info, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "pb_data")
	secret := randomHex(16)
	email, password := "arm64@example.com", randomHex(16)

	// The superuser is created first, so the data dir exists and is migrated: the
	// start-up timed below is a restart on existing data, as on a box after a reboot.
	upsert := exec.CommandContext(ctx, qemu, exe, "superuser", "upsert", email, password, "--dir", dataDir)
	upsert.Env = childEnv(secret)
	if out, err := upsert.CombinedOutput(); err != nil {
		t.Fatalf("superuser upsert under qemu: %v\n%s", err, out)
	}

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := &child{exe: exe, dir: dir, base: "http://" + addr, secret: secret,
		logPath: filepath.Join(dir, "serve.log"), client: &http.Client{Timeout: 10 * time.Second}}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(qemu, exe, "serve", "--http", addr, "--dir", dataDir)
	c.cmd.Env = childEnv(secret)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = childProcAttr()
	started := time.Now()
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s %s serve: %v", qemu, exe, err)
	}
	c.exited = make(chan struct{})
	go func() {
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("%v\n%s", err, c.logTail())
		}
	})

	if err := c.waitHealthy(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	startup := time.Since(started)
	pid := c.cmd.Process.Pid
	rssIdle, err := vmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}

	if err := c.signIn(ctx, email, password); err != nil {
		t.Fatal(err)
	}
	d := makeDeliveries("arm64-"+randomHex(4), 1, 1, secret)[0]
	skus, err := skusOf([]delivery{d})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.createProducts(ctx, skus); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	status, id, err := post(ctx, c.client, c.base, d)
	if err != nil || status != http.StatusOK || id == "" {
		t.Fatalf("orders/create delivery: status %d, inbox id %q, %v\n%s", status, id, err, c.logTail())
	}
	if _, err := c.waitSettled(ctx, id, 30*time.Second); err != nil {
		t.Fatalf("delivery %s: %v\n%s", id, err, c.logTail())
	}
	if got, err := c.status(ctx, id); err != nil || got != "processed" {
		t.Fatalf("delivery %s ended %q (%v), want processed\n%s", id, got, err, c.logTail())
	}
	processed := time.Since(sent)
	rssAfter, err := vmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	peak, _ := vmStatus(pid, "VmHWM")

	t.Logf("linux/arm64 binary: %.1f MiB (%d bytes)", mb(info.Size()), info.Size())
	t.Logf("start-up under qemu-user to a healthy /api/health: %s", startup.Round(time.Millisecond))
	t.Logf("delivery answered 200 and processed under qemu-user in %s", processed.Round(time.Millisecond))
	t.Logf("resident memory of the qemu process (VmRSS): idle %.1f MiB, after the delivery %.1f MiB (peak VmHWM %.1f MiB)",
		mb(rssIdle), mb(rssAfter), mb(peak))
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

// vmRSS is a process's resident memory in bytes, from /proc/<pid>/status.
func vmRSS(pid int) (int64, error) { return vmStatus(pid, "VmRSS") }

// vmStatus reads one "<key>: N kB" line of /proc/<pid>/status, in bytes.
func vmStatus(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), key+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s of pid %d: %q: %w", key, pid, v, err)
		}
		return kb * 1024, nil
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// mb is bytes in MiB.
func mb(b int64) float64 { return float64(b) / (1 << 20) }
