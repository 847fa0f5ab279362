//go:build unix

package bundle

import (
	"syscall"
	"time"
)

func nowSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// cpuSeconds is the process's user+system CPU time. The development machine
// is shared by several jobs, so wall-clock speeds there say more about the
// load than about the code; benchmarks also report MB per CPU-second.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
