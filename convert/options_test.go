package convert

import (
	"runtime"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// TestOptionsDefaults: the defaults Convert and Export apply, from the one
// function that decides them, and that an explicit value is never replaced.
func TestOptionsDefaults(t *testing.T) {
	cases := []struct {
		in          Options
		block       int
		doubleQuant bool
		rest        string
	}{
		{Options{Precision: FP16}, 0, false, SchemeFP16},
		{Options{Precision: Int8}, 0, false, SchemeFP16},
		{Options{Precision: Int4}, DefaultInt4Block, false, SchemeFP16},
		{Options{Precision: Int4, BlockSize: 128, RestDType: "fp32"}, 128, false, SchemeFP32},
		{Options{Precision: NF4}, DefaultNF4Block, true, SchemeFP16},
		{Options{Precision: NF4, DoubleQuant: SwitchOff}, DefaultNF4Block, false, SchemeFP16},
		{Options{Precision: NF4, DoubleQuant: SwitchOn, BlockSize: 256, RestDType: "bf16"}, 256, true, SchemeBF16},
	}
	for _, c := range cases {
		if err := c.in.validate(); err != nil {
			t.Fatalf("%+v: %v", c.in, err)
		}
		d := c.in.withDefaults()
		if d.BlockSize != c.block || d.doubleQuant() != c.doubleQuant || d.rest() != c.rest ||
			d.Threads != runtime.NumCPU() || d.ShardBytes != DefaultShardBytes {
			t.Errorf("%+v: defaults %+v (rest %s)", c.in, d, d.rest())
		}
		// The accessors ask the same rule, defaults applied or not.
		if c.in.blockSize() != d.BlockSize || c.in.doubleQuant() != d.doubleQuant() {
			t.Errorf("%+v: accessors disagree with withDefaults", c.in)
		}
	}
	e := ExportOptions{}.withDefaults()
	if e.Int8Mode != Int8Dynamic || e.Opset != DefaultOpset || e.Int4Accuracy != DefaultInt4Accuracy {
		t.Errorf("export defaults %+v", e)
	}
	if e := (ExportOptions{Int8Mode: Int8QDQ, Opset: 19, Int4Accuracy: 1}).withDefaults(); e.Int8Mode != Int8QDQ || e.Opset != 19 || e.Int4Accuracy != 1 {
		t.Errorf("explicit export options replaced: %+v", e)
	}
}

// TestOptionsRejected: what validate refuses, before any default is applied.
func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{
		{Precision: FP16, DoubleQuant: SwitchOn},
		{Precision: Int4, DoubleQuant: SwitchOn},
		{Precision: Int8, BlockSize: 64},
		{Precision: Int4, BlockSize: 512},
		{Precision: Int4, BlockSize: 48},
		{Precision: NF4, BlockSize: 8},
		{Precision: NF4, BlockSize: 8192},
		{Precision: FP32},
		{Precision: NF4, RestDType: "fp8"},
	} {
		if err := o.validate(); fault.ClassOf(err) != fault.Usage {
			t.Errorf("%+v: err %v, want a usage error", o, err)
		}
	}
	// SwitchOff for a precision without double quant is harmless.
	if err := (&Options{Precision: Int4, DoubleQuant: SwitchOff}).validate(); err != nil {
		t.Errorf("int4 with double quant off: %v", err)
	}
}
