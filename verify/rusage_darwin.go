//go:build darwin || ios

package verify

import (
	"fmt"
	"os"
	"syscall"
)

// maxRSSBytes reads ru_maxrss, which macOS counts in bytes.
func maxRSSBytes(ps *os.ProcessState) (int64, error) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, fmt.Errorf("verify: no rusage for process %d", ps.Pid())
	}
	return int64(ru.Maxrss), nil
}
