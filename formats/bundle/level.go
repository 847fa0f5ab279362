package bundle

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Level names a zstd encoder setting for Pack. The names are the
// klauspost/compress levels; "+lit" forces entropy coding of literals in
// blocks without matches, which the two fastest levels otherwise skip.
// Weight data has almost no matches, so for it "+lit" is what compresses:
// BF16 weights shrink to 0.78 with it and not at all without it (measured in
// docs/bundle.md).
type Level string

// Levels, fastest first.
const (
	LevelAuto        Level = "auto" // per precision, see LevelFor
	LevelFastest     Level = "fastest"
	LevelFastestLit  Level = "fastest+lit"
	LevelDefault     Level = "default"
	LevelDefaultLit  Level = "default+lit"
	LevelBetter      Level = "better"
	LevelBest        Level = "best"
	defaultLevelName       = LevelFastestLit
)

// Levels lists the accepted names (for help text and validation).
var Levels = []Level{LevelAuto, LevelFastest, LevelFastestLit, LevelDefault, LevelDefaultLit, LevelBetter, LevelBest}

// ParseLevel accepts a level name ("" means auto).
func ParseLevel(s string) (Level, error) {
	if s == "" {
		return LevelAuto, nil
	}
	for _, l := range Levels {
		if strings.EqualFold(s, string(l)) {
			return l, nil
		}
	}
	return "", fmt.Errorf("bundle: unknown level %q (want one of %v)", s, Levels)
}

// LevelFor is the level auto picks for an artifact of the given precision
// (the manifest's "precision" member), chosen from the measurements in
// docs/bundle.md:
//   - fp16, bf16, int8, fp32 and anything unknown: fastest+lit. Entropy
//     coding of literals is the only thing that compresses weights (fp16
//     0.92, bf16 0.78, int8 0.92); default+lit, better and best gain under
//     0.1% more at 1–40× the time.
//   - nf4, int4: fastest. Packed 4-bit codes do not compress at any level
//     (ratio 1.000), so the entropy stage would only halve the speed.
func LevelFor(precision string) Level {
	switch strings.ToLower(precision) {
	case "nf4", "int4":
		return LevelFastest
	}
	return defaultLevelName
}

// packWindow is the zstd window pack uses. Weights have no long-range
// matches: 256 KiB, 1 MiB and 4 MiB windows gave the same ratio to four
// digits on every payload. The window sets the size of the parallel
// encoder's jobs (4× window, at least 512 KiB), and so pack's memory: a
// 1 GiB FP16 artifact packs in 40 MiB RSS with two workers (107 MiB with a
// 1 MiB window), 87 MiB with eight.
const packWindow = 256 << 10

// maxEncoderWorkers caps the encoder goroutines (memory grows ~8 MiB each).
const maxEncoderWorkers = 8

// encoderOptions returns the zstd options for a level. The stream is
// compressed in independent jobs whose boundaries depend only on the window,
// never on the worker count, so the bytes are the same on any machine
// (TestPackDeterministicAcrossWorkers); at least two workers keep the
// encoder in that job mode.
func encoderOptions(l Level, workers int) ([]zstd.EOption, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(2, min(workers, maxEncoderWorkers))
	opts := []zstd.EOption{
		zstd.WithEncoderConcurrency(workers),
		zstd.WithConcurrentBlocks(true),
		zstd.WithWindowSize(packWindow),
		zstd.WithEncoderCRC(true),
	}
	switch l {
	case LevelFastest:
		opts = append(opts, zstd.WithEncoderLevel(zstd.SpeedFastest))
	case LevelFastestLit:
		opts = append(opts, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true))
	case LevelDefault:
		opts = append(opts, zstd.WithEncoderLevel(zstd.SpeedDefault))
	case LevelDefaultLit:
		opts = append(opts, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithAllLitEntropyCompression(true))
	case LevelBetter:
		opts = append(opts, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	case LevelBest:
		opts = append(opts, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	default:
		return nil, fmt.Errorf("bundle: unknown level %q", l)
	}
	return opts, nil
}
