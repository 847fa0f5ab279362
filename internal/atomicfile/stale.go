package atomicfile

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Temporary names carry the pid of the process that made them:
// ".OUT.tmp-PID-RANDOM" (Create, CreateDir) and ".OUT.unpack-PID-RANDOM"
// (bundle.Unpack). A process killed with SIGKILL cannot remove its own; the
// next run into the same parent does (RemoveStale).

// TempPattern is the os.MkdirTemp / os.CreateTemp pattern for a temporary
// of kind ("tmp", "unpack") beside the destination named base.
func TempPattern(base, kind string) string {
	return "." + base + "." + kind + "-" + strconv.Itoa(os.Getpid()) + "-*"
}

var staleName = regexp.MustCompile(`^\..+\.(?:tmp|unpack)-([0-9]+)-[0-9]+$`)

// Logf, when set, is told about every stale temporary RemoveStale removes;
// the command line prints it on stderr.
var Logf func(format string, args ...any)

// StaleAge is how long a temporary must have gone unmodified (it and the
// files directly in it) before RemoveStale takes its process for gone: a pid
// is only meaningful in its own pid namespace, and a live writer in another
// container sharing the directory keeps touching its files.
const StaleAge = 10 * time.Minute

// RemoveStale removes the temporaries in dir that this package's naming
// gives to a process that is no longer running and that nobody has modified
// for StaleAge, and returns their paths. Those of live processes (this one
// included) are left alone; a pid reused by an unrelated live process keeps
// its temporary until that process ends.
func RemoveStale(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if time.Since(lastModified(p)) < StaleAge {
			continue
		}
		if os.RemoveAll(p) == nil {
			removed = append(removed, p)
			if Logf != nil {
				Logf("removed %s, left by process %d, which is no longer running", p, pid)
			}
		}
	}
	return removed
}

// lastModified is the newest modification time of p and, for a directory,
// of the entries directly in it (a writer appends to its files there).
func lastModified(p string) time.Time {
	fi, err := os.Lstat(p)
	if err != nil {
		return time.Now()
	}
	t := fi.ModTime()
	if !fi.IsDir() {
		return t
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return time.Now()
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.ModTime().After(t) {
			t = info.ModTime()
		}
	}
	return t
}
