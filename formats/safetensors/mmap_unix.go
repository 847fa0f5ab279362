//go:build unix

package safetensors

import (
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only. It returns nil when the file cannot
// be mapped (empty, too large for the address space, a file system without
// mmap); the caller then reads through f instead.
func mapFile(f *os.File, size int64) ([]byte, func() error) {
	if size <= 0 || uint64(size) > math.MaxInt {
		return nil, nil
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil
	}
	return data, func() error { return unix.Munmap(data) }
}

// dontNeed tells the kernel the pages of b will not be read again soon, so
// they leave this process's resident set (they stay in the page cache).
func dontNeed(b []byte) {
	if len(b) > 0 {
		_ = unix.Madvise(b, unix.MADV_DONTNEED)
	}
}
