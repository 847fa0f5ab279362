package verify

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"
)

const x86CPUInfo = `processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Platinum 8480+
physical id	: 0
core id		: 0
flags		: fpu sse4_2 avx avx2 avx512f avx512_vnni amx_tile amx_int8 avx512_fp16

processor	: 1
model name	: Intel(R) Xeon(R) Platinum 8480+
physical id	: 0
core id		: 0
flags		: fpu

processor	: 2
physical id	: 0
core id		: 1

processor	: 3
physical id	: 1
core id		: 0
`

const armCPUInfo = `processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp i8mm bf16
CPU implementer	: 0x41

processor	: 1
Features	: fp asimd

Hardware	: BCM2835
`

func TestParseCPUInfo(t *testing.T) {
	x := parseCPUInfo(strings.NewReader(x86CPUInfo))
	if x.model != "Intel(R) Xeon(R) Platinum 8480+" || x.cores != 3 {
		t.Errorf("x86: model %q, cores %d (want 3: 0/0 twice, 0/1, 1/0)", x.model, x.cores)
	}
	if !x.flags["amx_int8"] || !x.flags["avx512_fp16"] || x.flags["fpu "] {
		t.Errorf("x86 flags %v", x.flags)
	}
	a := parseCPUInfo(strings.NewReader(armCPUInfo))
	if a.model != "BCM2835" || !a.flags["i8mm"] || a.flags["evtstrm "] || a.cores != 0 {
		t.Errorf("arm: %+v", a)
	}
	if e := parseCPUInfo(strings.NewReader("")); e.model != "" || e.cores != 0 {
		t.Errorf("empty: %+v", e)
	}
}

func TestCollectProvenance(t *testing.T) {
	p := CollectProvenance()
	if p.LogicalCPUs < 1 || p.GOMAXPROCS < 1 || p.GoVersion != runtime.Version() || p.ToolVersion == "" || p.OS != runtime.GOOS {
		t.Errorf("%+v", p)
	}
	if runtime.GOOS == "linux" && (p.CPUModel == "" || p.Kernel == "" || p.MemTotalBytes <= 0) {
		t.Errorf("linux fields missing: %+v", p)
	}
	if runtime.GOARCH == "amd64" && cpu.X86.HasAVX2 != slices.Contains(p.CPUFlags, "avx2") {
		t.Errorf("avx2 flag %v disagrees with x/sys/cpu %v", p.CPUFlags, cpu.X86.HasAVX2)
	}
	if !slices.IsSorted(p.CPUFlags) {
		t.Errorf("flags not sorted: %v", p.CPUFlags)
	}
	t.Logf("%+v", p)
}
