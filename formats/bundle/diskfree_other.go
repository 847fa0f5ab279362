//go:build !unix

package bundle

// freeBytes cannot tell here; Unpack then relies on write errors.
func freeBytes(string) (int64, bool) { return 0, false }
