//go:build unix

package verify

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// maxRSSBytes reads ru_maxrss, which macOS counts in bytes and Linux and the
// BSDs in KiB.
func maxRSSBytes(ps *os.ProcessState) (int64, error) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, fmt.Errorf("verify: no rusage for process %d", ps.Pid())
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss), nil
	}
	return int64(ru.Maxrss) * 1024, nil
}
