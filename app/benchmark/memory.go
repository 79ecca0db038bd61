package benchmark

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is a server's resident memory: VmRSS once started and idle, and after the
// load VmRSS and VmHWM (the peak resident size over its life, so under load). Zero
// means not read (no /proc).
type Memory struct {
	Idle, AfterLoad, Peak int64
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

// afterLoad reads VmRSS and VmHWM into m (left zero where /proc cannot be read).
func (m *Memory) afterLoad(pid int) {
	m.AfterLoad, _ = vmRSS(pid)
	m.Peak, _ = vmStatus(pid, "VmHWM")
}

// mb is bytes in MiB.
func mb(b int64) float64 { return float64(b) / (1 << 20) }
