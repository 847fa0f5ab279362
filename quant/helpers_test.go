package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bothPaths runs f with the assembly kernels on (where this machine has
// them) and off, naming the subtests so a failure says which path broke.
func bothPaths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	paths := []bool{false}
	if hasAVX2 {
		paths = append(paths, true)
	}
	for _, asm := range paths {
		name := "go"
		if asm {
			name = "asm"
		}
		t.Run(name, func(t *testing.T) {
			old := useAsm
			useAsm = asm
			defer func() { useAsm = old }()
			f(t)
		})
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// normals returns n values from N(0, sigma).
func normals(r *rand.Rand, n int, sigma float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * sigma)
	}
	return v
}

// randomBits returns n float32 with uniformly random bit patterns, NaN and
// Inf replaced by finite values when finite is set.
func randomBits(r *rand.Rand, n int, finite bool) []float32 {
	v := make([]float32, n)
	for i := range v {
		for {
			v[i] = math.Float32frombits(r.Uint32())
			if !finite || !(math.IsNaN(float64(v[i])) || math.IsInf(float64(v[i]), 0)) {
				break
			}
		}
	}
	return v
}

// nextUp and nextDown step one float32 ulp.
func nextUp(x float32) float32   { return math.Nextafter32(x, float32(math.Inf(1))) }
func nextDown(x float32) float32 { return math.Nextafter32(x, float32(math.Inf(-1))) }

// adversarialBlocks are hand-made inputs every blockwise scheme is tested on,
// each a multiple of 64 long so that it fills whole blocks.
func adversarialBlocks() map[string][]float32 {
	r := newRand(7)
	rep := func(v float32, n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = v
		}
		return s
	}
	ramp := make([]float32, 256)
	for i := range ramp {
		ramp[i] = float32(i-128) / 64
	}
	negOnly := normals(r, 128, 1)
	for i := range negOnly {
		negOnly[i] = -float32(math.Abs(float64(negOnly[i]))) - 0.01
	}
	mixedZeros := normals(r, 128, 1)
	for i := 0; i < len(mixedZeros); i += 3 {
		mixedZeros[i] = 0
	}
	signedZeros := rep(0, 64)
	for i := 0; i < 64; i += 2 {
		signedZeros[i] = float32(math.Copysign(0, -1))
	}
	huge := normals(r, 128, 1)
	for i := range huge {
		huge[i] *= 1e37
	}
	huge[5] = math.MaxFloat32
	huge[70] = -math.MaxFloat32
	tiny := normals(r, 128, 1)
	for i := range tiny {
		tiny[i] *= 1e-39 // subnormal
	}
	tiny[3] = math.Float32frombits(1) // smallest subnormal
	small := normals(r, 128, 1)
	for i := range small {
		small[i] *= 1e-37
	}
	return map[string][]float32{
		"zeros":         rep(0, 128),
		"signed-zeros":  signedZeros,
		"all-equal":     rep(0.375, 128),
		"all-equal-neg": rep(-2.5, 64),
		"one-nonzero":   append(rep(0, 63), 3),
		"ramp":          ramp,
		"neg-only":      negOnly,
		"mixed-zeros":   mixedZeros,
		"huge":          huge,
		"tiny":          tiny,
		"small":         small,
		"symmetric-tie": append(append(rep(1, 32), rep(-1, 31)...), 0.5),
		"normal":        normals(r, 4096, 0.02),
		"wide":          normals(r, 1024, 30),
	}
}
