//go:build unix

package verify

import (
	"syscall"
	"time"
)

// processCPUTime is user+system CPU time of this process so far, so that
// benchmarks can report CPU per image, a figure that a machine shared with
// other jobs does not inflate the way wall time is.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
