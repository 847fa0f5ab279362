//go:build unix

package safeio

import "syscall"

// oNonblock makes open return at once on a FIFO without a writer.
const oNonblock = syscall.O_NONBLOCK
