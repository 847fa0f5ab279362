// Package atomicfile writes files so that a reader never sees a half-written
// one: data goes to a temporary file in the destination directory, which is
// fsynced and renamed over the destination on Commit, or removed on Abort.
//
// Every open temporary file is also recorded in a process-wide registry so
// that a signal handler can remove them all (RemoveAll) before the process
// exits with status 130.
package atomicfile

import (
	"context"
	"errors"
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
	RemoveStale(dir)
	tmp, err := os.CreateTemp(dir, TempPattern(base, "tmp"))
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

// CommitContext is Commit behind one last check of ctx: the commit point is
// the last cancellation check, so a signal that arrived before it means no
// output (the temporary file is removed) and ctx's error.
func (f *File) CommitContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
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
	for name := range openDirs {
		os.RemoveAll(name)
		delete(openDirs, name)
	}
}

// Track registers a temporary directory made elsewhere (unpack's) so that
// RemoveAll removes it too; call the returned function once it has been
// renamed into place or removed.
func Track(dir string) (untrack func()) {
	mu.Lock()
	openDirs[dir] = struct{}{}
	mu.Unlock()
	return func() { forgetDir(dir) }
}

// Pending reports how many temporary files are open (for tests).
func Pending() int {
	mu.Lock()
	defer mu.Unlock()
	return len(open) + len(openDirs)
}

// Errors of CreateDir.
var (
	ErrNotEmpty = errors.New("exists and is not empty")
	ErrNotDir   = errors.New("exists and is not a directory")
)

// Dir is a temporary directory that becomes Path on Commit: artifacts made of
// several files appear all at once or not at all.
type Dir struct {
	path string
	tmp  string
	done bool
}

var openDirs = map[string]struct{}{}

// CreateDir makes a temporary directory beside path. path must not exist, or
// be an empty directory (it is replaced on Commit). A symbolic link, even to
// an empty directory, is refused (ErrNotDir), as unpack refuses it: Commit
// would replace the link, not write into its target.
func CreateDir(path string) (*Dir, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s: %w: it is a symbolic link; give the directory it points to", path, ErrNotDir)
	}
	if ents, err := os.ReadDir(path); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s: %w", path, ErrNotEmpty)
	} else if err == nil {
		// an empty directory: replaced on Commit
	} else if !os.IsNotExist(err) {
		if fi, serr := os.Stat(path); serr == nil && !fi.IsDir() {
			return nil, fmt.Errorf("%s: %w", path, ErrNotDir)
		}
	}
	parent, base := filepath.Split(filepath.Clean(path))
	if parent == "" {
		parent = "."
	}
	// Like mkdir -p: a missing parent is created, as users expect of -o.
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("atomicfile: %w", err)
	}
	RemoveStale(parent)
	tmp, err := os.MkdirTemp(parent, TempPattern(base, "tmp"))
	if err != nil {
		return nil, err
	}
	mu.Lock()
	openDirs[tmp] = struct{}{}
	mu.Unlock()
	return &Dir{path: path, tmp: tmp}, nil
}

// Tmp is the temporary directory to write into.
func (d *Dir) Tmp() string { return d.tmp }

// Join returns the temporary path of a file inside the directory.
func (d *Dir) Join(name string) string { return filepath.Join(d.tmp, name) }

// Commit renames the temporary directory into place.
func (d *Dir) Commit() error {
	if d.done {
		return fmt.Errorf("atomicfile: %s already finished", d.path)
	}
	d.done = true
	defer forgetDir(d.tmp)
	// MkdirTemp makes the directory private (0700); an artifact is an
	// ordinary directory.
	if err := os.Chmod(d.tmp, 0o755); err != nil {
		os.RemoveAll(d.tmp)
		return fmt.Errorf("atomicfile: %w", err)
	}
	syncDir(d.tmp)
	if ents, err := os.ReadDir(d.path); err == nil && len(ents) == 0 {
		os.Remove(d.path)
	}
	if err := os.Rename(d.tmp, d.path); err != nil {
		os.RemoveAll(d.tmp)
		return fmt.Errorf("atomicfile: %w", err)
	}
	syncDir(filepath.Dir(filepath.Clean(d.path)))
	return nil
}

// CommitContext is Commit behind one last check of ctx (see
// File.CommitContext): cancelled, the temporary directory is removed and
// ctx's error returned, so nothing appears at Path.
func (d *Dir) CommitContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		d.Abort()
		return err
	}
	return d.Commit()
}

// Abort removes the temporary directory; safe after Commit.
func (d *Dir) Abort() {
	if d.done {
		return
	}
	d.done = true
	os.RemoveAll(d.tmp)
	forgetDir(d.tmp)
}

func forgetDir(name string) {
	mu.Lock()
	delete(openDirs, name)
	mu.Unlock()
}
