package benchmark

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// launchServe starts `<argv...> serve` (argv is the opspine binary, or qemu and the
// binary) on a free loopback port with its data in dir/pb_data and extraEnv (KEY=value)
// added to its environment, and returns as soon as the process runs: the caller waits
// for health. It creates no superuser and signs in as none (startChild does both).
func launchServe(argv []string, dir, secret string, extraEnv ...string) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := &child{exe: argv[len(argv)-1], dir: dir, base: "http://" + addr, secret: secret, env: extraEnv,
		logPath: filepath.Join(dir, "serve.log"), client: &http.Client{Timeout: 10 * time.Second}}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	args := append(slices.Clone(argv[1:]), "serve", "--http", addr, "--dir", filepath.Join(dir, "pb_data"))
	c.cmd = exec.Command(argv[0], args...)
	c.cmd.Env = childEnv(secret, extraEnv...)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = childProcAttr()
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %v serve: %w", argv, err)
	}
	c.exited = make(chan struct{})
	go func() {
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	return c, nil
}

// startUntilHealthy launches `serve` and returns it once /api/health answers 200, with
// the time from the exec to that answer.
func startUntilHealthy(ctx context.Context, argv []string, dir, secret string, limit time.Duration) (*child, time.Duration, error) {
	started := time.Now()
	c, err := launchServe(argv, dir, secret)
	if err != nil {
		return nil, 0, err
	}
	if err := c.waitHealthy(ctx, limit); err != nil {
		c.stop()
		return nil, 0, err
	}
	return c, time.Since(started), nil
}

// coldStartRuns is how many starts the cold start is the median of.
const coldStartRuns = 3

// measureColdStart starts `exe serve` on the existing, migrated data dir in dir
// coldStartRuns times, stopping it in between, and returns the median time from the
// exec to /api/health answering 200. The database's pages are in the OS page cache (it
// was just written or served): this is a restart, as after an upgrade or a crash, not
// a boot from cold disks.
func measureColdStart(ctx context.Context, exe, dir, secret string) (time.Duration, error) {
	var took []time.Duration
	for range coldStartRuns {
		c, d, err := startUntilHealthy(ctx, []string{exe}, dir, secret, 30*time.Second)
		if err != nil {
			return 0, fmt.Errorf("cold start: %w", err)
		}
		took = append(took, d)
		if err := c.stop(); err != nil {
			return 0, fmt.Errorf("cold start: %w", err)
		}
	}
	slices.Sort(took)
	return took[len(took)/2], nil
}
