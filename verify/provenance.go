package verify

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/cpu"

	"github.com/quantpack/quantpack/internal/version"
)

// Provenance records the machine and build a measurement came from, to be
// printed with every result: INT8 speed in particular depends on VNNI/AMX.
type Provenance struct {
	CPUModel string `json:"cpu_model"`
	// CPUFlags are the features relevant to inference speed that this CPU
	// has and the OS enables, as Go's CPUID probe (golang.org/x/sys/cpu)
	// reports them, plus AMX and AVX512-FP16 from /proc/cpuinfo's flags
	// where x/sys/cpu has no field. Sorted, /proc/cpuinfo spelling.
	CPUFlags []string `json:"cpu_flags"`
	// LogicalCPUs is what the OS shows (runtime.NumCPU); PhysicalCores
	// counts distinct (package, core) pairs in /proc/cpuinfo, 0 when
	// unknown.
	LogicalCPUs   int    `json:"logical_cpus"`
	PhysicalCores int    `json:"physical_cores,omitempty"`
	GOMAXPROCS    int    `json:"gomaxprocs"`
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	Kernel        string `json:"kernel,omitempty"`
	MemTotalBytes int64  `json:"mem_total_bytes,omitempty"`
	GoVersion     string `json:"go_version"`
	ToolVersion   string `json:"tool_version"`
}

// CollectProvenance reads the running machine. Files that do not exist on
// this OS leave their fields empty; it never fails.
func CollectProvenance() Provenance {
	p := Provenance{
		LogicalCPUs: runtime.NumCPU(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		OS:          runtime.GOOS,
		Arch:        runtime.GOARCH,
		GoVersion:   runtime.Version(),
		ToolVersion: version.Version,
	}
	var info cpuInfo
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		info = parseCPUInfo(f)
		f.Close()
	}
	p.CPUModel = info.model
	p.PhysicalCores = info.cores
	p.CPUFlags = cpuFlags(info.flags)
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		p.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		if v, ok := parseKBField(f, "MemTotal:"); ok {
			p.MemTotalBytes = v
		}
		f.Close()
	}
	return p
}

type cpuInfo struct {
	model string
	flags map[string]bool
	cores int
}

// maxCPUInfoLine bounds one /proc/cpuinfo line (flags lines are ~1.5 KiB).
const maxCPUInfoLine = 64 << 10

// parseCPUInfo reads /proc/cpuinfo text: the first "model name" (x86) or
// "Model"/"Hardware"/"CPU part" fallback (ARM), the first processor's
// "flags" or "Features", and the number of distinct physical cores.
func parseCPUInfo(r io.Reader) cpuInfo {
	info := cpuInfo{flags: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxCPUInfoLine)
	var fallbackModel string
	cores := map[string]bool{}
	physID, coreID := "", ""
	flush := func() {
		if coreID != "" {
			cores[physID+"/"+coreID] = true
		}
		physID, coreID = "", ""
	}
	gotFlags := false
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			if strings.TrimSpace(sc.Text()) == "" {
				flush()
			}
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			if info.model == "" {
				info.model = v
			}
		case "Model", "Hardware":
			if fallbackModel == "" {
				fallbackModel = v
			}
		case "flags", "Features":
			if !gotFlags {
				for _, f := range strings.Fields(v) {
					info.flags[f] = true
				}
				gotFlags = true
			}
		case "physical id":
			physID = v
		case "core id":
			coreID = v
		}
	}
	flush()
	if info.model == "" {
		info.model = fallbackModel
	}
	info.cores = len(cores)
	return info
}

// cpuFlags lists the inference-relevant features. On x86 they come from
// x/sys/cpu (CPUID with the OS's XSAVE state checked); AMX and
// AVX512-FP16, which x/sys/cpu lacks or which need the kernel's
// permission, are taken from /proc/cpuinfo's flags.
func cpuFlags(proc map[string]bool) []string {
	set := map[string]bool{}
	add := func(name string, has bool) {
		if has {
			set[name] = true
		}
	}
	switch runtime.GOARCH {
	case "amd64", "386":
		x := cpu.X86
		add("sse4_2", x.HasSSE42)
		add("avx", x.HasAVX)
		add("avx2", x.HasAVX2)
		add("fma", x.HasFMA)
		add("f16c", x.HasF16C)
		add("avx512f", x.HasAVX512F)
		add("avx512bw", x.HasAVX512BW)
		add("avx512vl", x.HasAVX512VL)
		add("avx512_vnni", x.HasAVX512VNNI)
		add("avx512_bf16", x.HasAVX512BF16)
		add("avx_vnni", x.HasAVXVNNI)
		add("amx_tile", x.HasAMXTile)
		add("amx_int8", x.HasAMXInt8)
		add("amx_bf16", x.HasAMXBF16)
	case "arm64":
		a := cpu.ARM64
		add("asimd", a.HasASIMD)
		add("asimdhp", a.HasASIMDHP)
		add("asimddp", a.HasASIMDDP)
		add("i8mm", a.HasI8MM)
		add("sve", a.HasSVE)
		add("sve2", a.HasSVE2)
	}
	for _, f := range []string{"avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16", "bf16", "i8mm"} {
		add(f, proc[f])
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// parseKBField finds "Name:   1234 kB" in a /proc file and returns bytes.
func parseKBField(r io.Reader, name string) (int64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || v < 0 || v > 1<<53/1024 {
			return 0, false
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		return v, true
	}
	return 0, false
}
