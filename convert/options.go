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
			o.BlockSize = DefaultInt4Block
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
