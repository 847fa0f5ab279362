// Package atomicfile writes files so that a reader never sees a half-written
// one: data goes to a temporary file in the destination directory, which is
// fsynced and renamed over the destination on Commit, or removed on Abort.
//
// Every open temporary file is also recorded in a process-wide registry so
// that a signal handler can remove them all (RemoveAll) before the process
// exits with status 130.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// File is a temporary file that becomes Path on Commit.
type File struct {
	*os.File
	path string
	done bool
}

var (
	mu   sync.Mutex
	open = map[string]struct{}{}
)

// Create opens a temporary file beside path. The caller must call Commit or
// Abort; Abort after Commit is a no-op, so `defer f.Abort()` is the idiom.
func Create(path string) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	mu.Lock()
	open[tmp.Name()] = struct{}{}
	mu.Unlock()
	return &File{File: tmp, path: path}, nil
}

// Path is the final destination.
func (f *File) Path() string { return f.path }

// Commit fsyncs the data, closes the file, renames it into place and fsyncs
// the directory. On any error the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("atomicfile: %s already finished", f.path)
	}
	f.done = true
	tmp := f.File.Name()
	defer forget(tmp)
	if err := f.File.Sync(); err != nil {
		f.File.Close()
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: sync %s: %w", f.path, err)
	}
	if err := f.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: close %s: %w", f.path, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, f.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: %w", err)
	}
	syncDir(filepath.Dir(f.path))
	return nil
}

// Abort closes and removes the temporary file. It is safe to call after
// Commit and more than once.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	tmp := f.File.Name()
	f.File.Close()
	os.Remove(tmp)
	forget(tmp)
}

func forget(name string) {
	mu.Lock()
	delete(open, name)
	mu.Unlock()
}

func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	return f.Commit()
}

// RemoveAll removes every temporary file still open in this process. Signal
// handlers call it before exiting.
func RemoveAll() {
	mu.Lock()
	defer mu.Unlock()
	for name := range open {
		os.Remove(name)
		delete(open, name)
	}
}

// Pending reports how many temporary files are open (for tests).
func Pending() int {
	mu.Lock()
	defer mu.Unlock()
	return len(open)
}
