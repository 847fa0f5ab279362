package verify

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
)

// helperEnv makes the test binary act as a child process that touches the
// given number of MiB and reports its peak (the standard helper-process
// pattern: the parent re-executes its own binary).
const helperEnv = "QUANTPACK_VERIFY_TOUCH_MIB"

func TestMain(m *testing.M) {
	if v := os.Getenv(helperEnv); v != "" {
		os.Exit(touchHelper(v))
	}
	os.Exit(m.Run())
}

var sink []byte

func touchHelper(v string) int {
	mib, err := strconv.Atoi(v)
	if err != nil || mib < 0 || mib > 4096 {
		fmt.Fprintln(os.Stderr, "bad", helperEnv, v)
		return 2
	}
	sink = make([]byte, mib<<20)
	for i := 0; i < len(sink); i += 4096 { // one write per page makes it resident
		sink[i] = 1
	}
	if err := ReportPeakRSS(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func helperCmd(t *testing.T, mib int) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(mib))
	return cmd
}

// TestMeasureChildPeakRSS: a child that touches 200 MiB must report a peak
// of at least 200 MiB and not much more. The upper margin (64 MiB) is the
// Go runtime and test binary (~10–20 MiB measured) with room to spare.
func TestMeasureChildPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM and ru_maxrss in KiB are Linux facts")
	}
	const mib = 200
	m, err := MeasureChild(helperCmd(t, mib))
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := int64(mib)<<20, int64(mib+64)<<20
	if raceEnabled {
		// Shadow memory: 422 MiB measured for 200 MiB touched.
		hi = int64(3*mib+64) << 20
	}
	if !m.SelfReported || m.PeakBytes < lo || m.PeakBytes > hi {
		t.Errorf("self-reported peak %d MiB (reported %v), want %d..%d MiB", m.PeakBytes>>20, m.SelfReported, lo>>20, hi>>20)
	}
	// rusage is an upper bound of the child's own peak, give or take the
	// kernel's batched RSS counters (measured 1 MiB apart either way).
	if m.RusageMaxBytes < m.PeakBytes-8<<20 {
		t.Errorf("rusage %d MiB below self-reported %d MiB", m.RusageMaxBytes>>20, m.PeakBytes>>20)
	}
	t.Logf("child touched %d MiB: VmHWM %d MiB, ru_maxrss %d MiB", mib, m.PeakBytes>>20, m.RusageMaxBytes>>20)

	small, err := PeakRSS(helperCmd(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if small <= 0 || small >= lo {
		t.Errorf("1 MiB child: ru_maxrss %d MiB", small>>20)
	}
}

func TestPeakRSSFailedChild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	cmd := helperCmd(t, 0)
	cmd.Env = append(cmd.Env, helperEnv+"=bad")
	v, err := PeakRSS(cmd)
	if err == nil || v <= 0 {
		t.Errorf("failing child: %d, %v (want the figure and the exit error)", v, err)
	}
}

func TestCurrentRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	r, err := CurrentRSS()
	if err != nil || r.Current <= 0 || r.Peak < r.Current {
		t.Errorf("%+v, %v", r, err)
	}
	got, err := parseProcStatus([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t    1024 kB\n"))
	if err != nil || got.Peak != 2<<20 || got.Current != 1<<20 {
		t.Errorf("%+v, %v", got, err)
	}
	for _, bad := range []string{"", "VmRSS: 12 kB\n", "VmRSS: x kB\nVmHWM: 1 kB\n", "VmRSS: -5 kB\nVmHWM: 1 kB\n", "VmRSS: 99999999999999999999 kB\nVmHWM: 1 kB\n"} {
		if _, err := parseProcStatus([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
