//go:build unix

package bundle

import "golang.org/x/sys/unix"

// freeBytes returns the bytes an unprivileged user may still write in the
// file system holding dir, and whether it could tell.
func freeBytes(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	free := st.Bavail * uint64(st.Bsize)
	if free > 1<<62 {
		free = 1 << 62
	}
	return int64(free), true
}
