package verify

import "fmt"

// maxBatch bounds a batch size (--batch): far beyond any vision batch,
// small enough that a batch of 224² images cannot overflow an int.
const maxBatch = 1 << 16

// deviceCPU is ort.DeviceCPU (verify/ort imports verify, not the reverse).
const deviceCPU = "cpu"

// Runtime is how models are run and timed: the opener and memory probe,
// the device and threads they were asked to apply, the batch sizes and the
// number of runs. Options embeds it, and study passes its own to every
// Compare as it is, so verify and study cannot disagree on a setting; the
// command line fills it from one flag set (cmd/quantpack's runtimeFlags).
type Runtime struct {
	// Open opens each model. Required.
	Open Opener
	// Memory measures peak RSS in a child process; nil skips memory.
	Memory MemoryProbe
	// Device, EPLibrary, ORTVersion and Threads are what Open was asked to
	// apply. A report records what the sessions say they applied
	// (AppliedReporter, see Runtime.open); these values only for runners
	// that cannot say (test fakes).
	Device     string
	EPLibrary  string
	ORTVersion string
	Threads    int
	// BatchSizes to time; the first is also the batch of the comparison
	// pass and the one speedup is taken at. Default [1].
	BatchSizes []int
	// Warmup untimed and Iters timed runs per model and batch size
	// (Iters 0 means DefaultIters).
	Warmup, Iters int
}

// Inputs are what the models are compared on.
type Inputs struct {
	// Images is an ImageFolder (DIR/<class>/*.jpg|png, or a flat folder);
	// empty means Samples synthetic inputs made with Seed.
	Images string
	// Labels is a class-names file (one per line); empty means the
	// baseline's config.json id2label, when it has one.
	Labels  string
	Samples int // 0 means DefaultSamples
	Seed    uint64
	// Workers decode images; ≤ 0 means GOMAXPROCS.
	Workers int
}

// Normalize fills the defaults (batch sizes [1], DefaultIters) and
// validates the result.
func (rt *Runtime) Normalize() error {
	rt.withDefaults()
	return rt.Validate()
}

func (rt *Runtime) withDefaults() {
	if len(rt.BatchSizes) == 0 {
		rt.BatchSizes = []int{1}
	}
	if rt.Iters == 0 {
		rt.Iters = DefaultIters
	}
}

// Validate checks the settings as given, after defaults: a value out of
// range is ErrOption (exit 2) with the flag that sets it named. It is the
// one check of these settings: the command line calls it on its flags,
// Compare on its options.
func (rt Runtime) Validate() error {
	switch rt.Device {
	case "", deviceCPU, deviceCUDA:
	default:
		return fmt.Errorf("%w: --device %q: want %s or %s", ErrOption, rt.Device, deviceCPU, deviceCUDA)
	}
	if rt.EPLibrary != "" && rt.Device != deviceCUDA {
		return fmt.Errorf("%w: --ep-library needs --device %s", ErrOption, deviceCUDA)
	}
	if rt.Threads < 0 {
		return fmt.Errorf("%w: --threads %d: want ≥ 0", ErrOption, rt.Threads)
	}
	if len(rt.BatchSizes) == 0 {
		return fmt.Errorf("%w: --batch: no batch size", ErrOption)
	}
	for _, b := range rt.BatchSizes {
		if b < 1 || b > maxBatch {
			return fmt.Errorf("%w: --batch %d: want sizes from 1 to %d", ErrOption, b, maxBatch)
		}
	}
	if rt.Warmup < 0 {
		return fmt.Errorf("%w: --warmup %d: want ≥ 0", ErrOption, rt.Warmup)
	}
	if rt.Iters < 1 {
		return fmt.Errorf("%w: --iters %d: want ≥ 1", ErrOption, rt.Iters)
	}
	return nil
}

// Normalize fills the default (DefaultSamples) and validates the result.
func (in *Inputs) Normalize() error {
	in.withDefaults()
	return in.Validate()
}

func (in *Inputs) withDefaults() {
	if in.Samples == 0 {
		in.Samples = DefaultSamples
	}
}

// Validate checks the inputs as given, after defaults (ErrOption, exit 2).
// Whether the files exist is checked where they are read.
func (in Inputs) Validate() error {
	if in.Samples < 1 {
		return fmt.Errorf("%w: --samples %d: want ≥ 1", ErrOption, in.Samples)
	}
	if in.Labels != "" && in.Images == "" {
		return fmt.Errorf("%w: --labels needs --images", ErrOption)
	}
	return nil
}

// Applied is the runtime configuration a Runner actually runs with, as
// opposed to what was asked for: the report's provenance is taken from it,
// so it cannot drift from what ran.
type Applied struct {
	Device     string
	EPLibrary  string
	ORTVersion string
	// Threads is the intra-op thread count set on the session (0: the
	// runtime's own default).
	Threads int
}

// AppliedReporter is implemented by runners that can say what they applied
// (ONNX Runtime sessions); test fakes need not.
type AppliedReporter interface {
	Applied() Applied
}

// open opens modelPath with rt.Open and returns the runner with the
// settings it runs with: those it reports (AppliedReporter), else the ones
// rt asked for. This is the one place a report's runtime provenance comes
// from.
func (rt Runtime) open(modelPath string) (Runner, Applied, error) {
	r, err := rt.Open(modelPath)
	if err != nil {
		return nil, Applied{}, err
	}
	if ar, ok := r.(AppliedReporter); ok {
		return r, ar.Applied(), nil
	}
	return r, Applied{Device: rt.Device, EPLibrary: rt.EPLibrary, ORTVersion: rt.ORTVersion, Threads: rt.Threads}, nil
}

// Applied is the runtime a report's sessions ran with, as its provenance
// records it.
func (p RunProvenance) Applied() Applied {
	return Applied{Device: p.Device, EPLibrary: p.EPLibrary, ORTVersion: p.ORTVersion, Threads: p.Threads}
}
