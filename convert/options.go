package convert

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/quantpack/quantpack/quant"
)

// This file is where convert's and export's options get their defaults and
// where the block-size rules live: one place for each rule (STYLE.md 14).
// Flag parsers pass on only what the user set; Convert and Export call
// withDefaults after validating.

// FP32 is full precision: export's graph of an unconverted checkpoint.
// convert does not write fp32 artifacts.
const FP32 Precision = "fp32"

// ExportPrecisions lists export's --precision values (a bf16 artifact is not
// exported; see ErrExportUnsupported).
var ExportPrecisions = []Precision{FP32, FP16, Int8, Int4, NF4}

// ParseExportPrecision validates an export precision name.
func ParseExportPrecision(s string) (Precision, error) {
	for _, p := range ExportPrecisions {
		if string(p) == s {
			return p, nil
		}
	}
	if s == string(BF16) {
		// A known precision, just not one export writes: say what to do.
		return "", fmt.Errorf("--precision bf16: bf16 is a convert precision and is not exported to ONNX; " +
			"export --precision fp16 gives a graph of the same size (or fp32), and `convert --precision bf16` writes bf16 safetensors")
	}
	return "", fmt.Errorf("unknown precision %q (want fp32, fp16, int8, int4 or nf4)", s)
}

// ParseExportPrecisions parses a comma-separated list of export precisions
// (study's --precisions); empty items are skipped.
func ParseExportPrecisions(list string) ([]Precision, error) {
	var out []Precision
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := ParseExportPrecision(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Defaults.
const (
	// DefaultInt4Block is 128: with DefaultInt4Method and
	// DefaultInt4Accuracy it is the CPU decision of docs/accuracy.md. On ONNX
	// Runtime's CPU kernel MatMulNBits at block 32 is slower than fp32 and
	// at block 128 faster, and hqq's scales and zero points buy back most of
	// what the coarser blocks lose.
	DefaultInt4Block = 128
	// DefaultNF4Block is bitsandbytes' default.
	DefaultNF4Block = 64
	// DefaultRestDType is the dtype of tensors that stay float.
	DefaultRestDType = "fp16"
	// DefaultShardBytes matches transformers' save_pretrained default
	// max_shard_size of 5 GB.
	DefaultShardBytes = 5_000_000_000
	// DefaultOpset is the ONNX opset of export's default domain.
	DefaultOpset = 17
	// DefaultInt4Accuracy is MatMulNBits' accuracy_level 4: activations
	// quantized to int8 per block inside the kernel, the fast CPU path.
	DefaultInt4Accuracy = 4

	nestedBlock = 256 // bitsandbytes double-quant block
)

// Default 4-bit methods (Options.Method ""): hqq for int4 (so int4 is
// asymmetric by default: --method rtn or mse for symmetric blocks), rtn for
// nf4, whose artifacts bitsandbytes reproduces bit for bit.
const (
	DefaultInt4Method = quant.MethodHQQ
	DefaultNF4Method  = quant.MethodRTN
	// The block methods under --method awq: the most accurate each
	// precision has (nf4 has no zero point for hqq).
	DefaultAWQBaseInt4 = quant.MethodHQQ
	DefaultAWQBaseNF4  = quant.MethodMSE
)

// Block-size limits. int4: MatMulNBits accepts powers of two ≥ 16 (convert
// writes 16 to 256). nf4: bitsandbytes supports 64..4096 (powers of two) and
// MatMulBnb4 any power of two ≥ 16.
const (
	minInt4Block, maxInt4Block = 16, 256
	minNF4Block, maxNF4Block   = 16, 4096
)

// minAutoInt4Block is the smallest block int4BlockFor chooses. ONNX
// Runtime's CPU MatMulNBits (accuracy level 4) pays per block more than per
// padded code: on DeiT-Tiny's K = 192 block 64 ran at 1.00–1.10× the time
// of the padded block 128 (a few percent, for 14% fewer bytes and +0.7 dB),
// block 32 at 1.1–3.5× and block 16 at 1.2–5.8× (BenchmarkInt4BlockForK,
// 1 and 2 threads, batch 1 and 8; docs/accuracy.md, "Per-tensor block
// size"). Below 64 the rule would buy bytes with the speed the default is for.
const minAutoInt4Block = 64

// Int4BlockRule names int4BlockFor's rule and floor, for caches keyed by
// what decides an artifact's bytes (study's cells): change it with the rule.
const Int4BlockRule = "per-tensor fewest bytes, blocks 64..128"

// int4BlockFor is the rule for an int4 weight's block when the user gave no
// --block-size: of the blocks from minAutoInt4Block to DefaultInt4Block,
// the one that stores a row of k inputs in the fewest bytes (codes, float32
// scales and, asymmetric, zero points: the int4 layout's own sizes), the
// larger block on a tie. A k that is a multiple of DefaultInt4Block keeps
// it (no padding, fewest scales); DeiT-Tiny's k = 192 gets 64 (192 codes
// and 3 scales instead of 256 codes and 2); a k where every allowed block
// pads, such as 240, keeps DefaultInt4Block. An explicit --block-size is
// never replaced (Options.int4Block).
func int4BlockFor(k int64, asym bool) int64 {
	best, bestBytes := int64(DefaultInt4Block), int4RowBytes(k, DefaultInt4Block, asym)
	for bs := int64(DefaultInt4Block / 2); bs >= minAutoInt4Block; bs /= 2 {
		if n := int4RowBytes(k, bs, asym); n < bestBytes {
			best, bestBytes = bs, n
		}
	}
	return best
}

// int4RowBytes is what the int4 layout stores for one row of k inputs at
// block bs, read from the layouts table so that the rule and the writer
// cannot disagree.
func int4RowBytes(k, bs int64, asym bool) int64 {
	specs, _, err := mustLayout(SchemeInt4).specs("w", geom{Shape: []int64{1, k}, Block: bs, Asym: asym})
	if err != nil {
		panic(err) // the int4 layout sizes every part of a 2-D weight
	}
	var n int64
	for _, s := range specs {
		n += specBytes(s)
	}
	return n
}

// int4Block is the block of an int4 weight whose rows are k wide: the
// user's --block-size exactly as given, else int4BlockFor. (Under another
// precision BlockSize is that precision's; an int4 tensor of a mix takes
// the rule.)
func (o *Options) int4Block(k int64) int64 {
	if o.Precision == Int4 && o.BlockSize != 0 && !o.blockDefault {
		return int64(o.BlockSize)
	}
	return int4BlockFor(k, o.Asymmetric)
}

// blocksVary reports whether some int4 weight has a block other than the
// nominal BlockSize (int4BlockFor chose a smaller one). Only then do the
// manifest and config.json say so (block_per_tensor), so that an artifact
// whose every K is a multiple of DefaultInt4Block is byte for byte what it
// was before the per-tensor rule.
func blocksVary(items []*item, opt *Options) bool {
	for _, it := range items {
		if it.scheme == SchemeInt4 && it.geom.Block != int64(opt.blockSize()) {
			return true
		}
	}
	return false
}

// validInt4Block is the int4 block-size rule convert writes by.
func validInt4Block(bs int64) bool {
	return bs >= minInt4Block && bs <= maxInt4Block && bs&(bs-1) == 0
}

// validNF4Block is the nf4 block-size rule convert writes by and export
// reads by.
func validNF4Block(bs int64) bool {
	return bs >= minNF4Block && bs <= maxNF4Block && bs&(bs-1) == 0
}

// Switch is an on/off option whose zero value leaves the choice to the
// default, so that a caller who says nothing and a caller who says "off"
// can be told apart.
type Switch int8

// Switch values.
const (
	SwitchDefault Switch = iota // the option's default
	SwitchOn
	SwitchOff
)

// SwitchOf is SwitchOn for true and SwitchOff for false.
func SwitchOf(on bool) Switch {
	if on {
		return SwitchOn
	}
	return SwitchOff
}

// withDefaults returns o with every option left at its zero value replaced
// by its default. It is the one place convert's defaults are decided:
// Convert, Export's own conversion and study all pass through it. Validate
// first: validation sees what the caller asked for, not the defaults.
func (o Options) withDefaults() Options {
	if o.BlockSize == 0 {
		switch o.Precision {
		case Int4:
			// The nominal block; each tensor's is int4Block's.
			o.BlockSize, o.blockDefault = DefaultInt4Block, true
		case NF4:
			o.BlockSize = DefaultNF4Block
		}
	}
	if o.DoubleQuant == SwitchDefault && o.Precision == NF4 {
		o.DoubleQuant = SwitchOn // bitsandbytes' and transformers' usual nf4 setting
	}
	if o.RestDType == "" {
		o.RestDType = DefaultRestDType
	}
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.ShardBytes <= 0 {
		o.ShardBytes = DefaultShardBytes
	}
	return o
}

// blockSize is the int4 or nf4 block size.
func (o *Options) blockSize() int { return o.withDefaults().BlockSize }

// doubleQuant reports whether nf4 absmax values are quantized too.
func (o *Options) doubleQuant() bool { return o.withDefaults().DoubleQuant == SwitchOn }

// withDefaults is ExportOptions' counterpart of Options.withDefaults; the
// conversion options get theirs when Export converts.
func (o ExportOptions) withDefaults() ExportOptions {
	if o.Int8Mode == "" {
		o.Int8Mode = Int8Dynamic
	}
	if o.Opset == 0 {
		o.Opset = DefaultOpset
	}
	if o.Int4Accuracy == 0 {
		o.Int4Accuracy = DefaultInt4Accuracy
	}
	return o
}
