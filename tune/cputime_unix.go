//go:build unix

package tune

import "syscall"

// cpuSeconds is the process's user+system CPU time so far, a figure that a
// shared machine's load does not inflate the way it inflates wall time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
