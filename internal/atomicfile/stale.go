package atomicfile

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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

// RemoveStale removes the temporaries in dir that this package's naming
// gives to a process that is no longer running, and returns their paths.
// Those of live processes (this one included) are left alone. A pid reused
// by an unrelated live process keeps its temporary until that process ends;
// a temporary of another pid namespace sharing the directory is only safe
// because the check errs on the side of "alive" when it cannot tell.
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
		if os.RemoveAll(p) == nil {
			removed = append(removed, p)
			if Logf != nil {
				Logf("removed %s, left by process %d, which is no longer running", p, pid)
			}
		}
	}
	return removed
}
