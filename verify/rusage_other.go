//go:build !unix

package verify

import (
	"errors"
	"os"
)

// maxRSSBytes has no rusage to read on this OS.
func maxRSSBytes(*os.ProcessState) (int64, error) {
	return 0, errors.New("verify: peak RSS of a child is not available on this OS")
}
