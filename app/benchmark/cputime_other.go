//go:build !linux

package benchmark

import "time"

// cpuTime is unknown outside Linux.
func cpuTime(int) time.Duration { return -1 }

// machineCPU is unknown outside Linux.
func machineCPU() (busy, total time.Duration) { return -1, -1 }
