//go:build !unix

package quantize

import "time"

// cpuTime is not measured off Unix: the CPU ratios read NaN.
func cpuTime() time.Duration { return 0 }
