// Package safeio opens and reads input files that may be hostile: a FIFO or
// a device where a file is expected (which would block forever in open, or
// never end), or a small config file that is a symlink to /dev/zero. Every
// read of an untrusted file goes through Open or ReadFile.
package safeio

import (
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/quantpack/quantpack/internal/fault"
)

// Sentinels.
var (
	// ErrNotRegular is a FIFO, device, socket or directory where a regular
	// file is expected.
	ErrNotRegular = fault.New(fault.Invalid, "not a regular file")
	// ErrTooLarge is a file longer than its reader's limit.
	ErrTooLarge = fault.New(fault.Invalid, "file too large")
)

// Open opens path for reading after checking, without opening it, that it
// (or what a symlink points to) is a regular file; the open itself does not
// block, and the opened file is checked again, so a FIFO swapped in between
// is refused too.
func Open(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regular(path, fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, err
	}
	if fi, err = f.Stat(); err == nil {
		err = regular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func regular(path string, fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "a " + fi.Mode().Type().String()
	switch t := fi.Mode().Type(); {
	case t&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case t&fs.ModeCharDevice != 0:
		kind = "a character device"
	case t&fs.ModeDevice != 0:
		kind = "a device"
	case t&fs.ModeSocket != 0:
		kind = "a socket"
	case t&fs.ModeDir != 0:
		kind = "a directory"
	}
	return fmt.Errorf("%s: %w: it is %s", path, ErrNotRegular, kind)
}

// ReadFile reads a whole small file through Open, refusing one longer than
// limit bytes (ErrTooLarge naming the limit) without reading past it.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes (limit %d)", path, ErrTooLarge, limit, limit)
	}
	return b, nil
}
