package benchmark

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTime is the user+system CPU time a process has used so far, from /proc (pid 0 is
// this process), or -1 when it cannot be read.
func cpuTime(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return -1
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return ticks(utime + stime)
}

// machineCPU is the busy and total CPU time of all CPUs since boot, from /proc/stat,
// or -1, -1.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1, -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return -1, -1
	}
	var busyTicks, totalTicks int64
	for i, f := range fields[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return -1, -1
		}
		totalTicks += v
		if i != 3 && i != 4 { // idle, iowait
			busyTicks += v
		}
	}
	return ticks(busyTicks), ticks(totalTicks)
}

// ticks converts USER_HZ clock ticks, 100 a second on every Linux opspine runs on.
func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / 100 }
