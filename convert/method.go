package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/quant"
)

// method is the 4-bit method in effect: the one asked for, else
// DefaultInt4Method or DefaultNF4Method (rtn for other precisions, where
// it means nothing).
func (o *Options) method() quant.Method {
	switch {
	case o.Method != "":
		return o.Method
	case o.Precision == Int4:
		return DefaultInt4Method
	case o.Precision == NF4:
		return DefaultNF4Method
	}
	return quant.MethodRTN
}

// quantMethod is the block method the quantizers run: the method, or under
// awq its base (AWQBase, else DefaultAWQBaseInt4 / DefaultAWQBaseNF4).
func (o *Options) quantMethod() quant.Method {
	m := o.method()
	if m != quant.MethodAWQ {
		return m
	}
	switch {
	case o.AWQBase != "":
		return o.AWQBase
	case o.Precision == NF4:
		return DefaultAWQBaseNF4
	}
	return DefaultAWQBaseInt4
}

// validateMethod checks --method against the precision. hqq optimises a zero
// point, so it turns on Asymmetric (the one place that implication lives),
// also as awq's base.
func (o *Options) validateMethod() error {
	m, err := quant.ParseMethod(string(o.method()))
	if err != nil {
		return usage(err)
	}
	if o.AWQBase != "" && m != quant.MethodAWQ {
		return usage(fmt.Errorf("--awq-base applies to --method awq only"))
	}
	switch {
	case m == quant.MethodRTN:
	case o.Precision != Int4 && o.Precision != NF4:
		return usage(fmt.Errorf("--method %s applies to int4 and nf4 only", m))
	case m == quant.MethodHQQ && o.Precision == NF4:
		return usage(fmt.Errorf("--method hqq optimises an int4 zero point; nf4 has none (use mse)"))
	case m == quant.MethodHQQ:
		o.Asymmetric = true
	case m == quant.MethodAWQ:
		return o.validateAWQ()
	}
	return nil
}

// validateAWQ checks awq's own requirements: calibration images, a base
// block method that applies to the precision, no per-tensor mix.
func (o *Options) validateAWQ() error {
	if o.Calib == nil || o.Calib.Images == "" {
		return usage(fmt.Errorf("--method awq scales input channels from calibration activations: give --calib-images DIR " +
			"(an ImageFolder such as the fixtures' calib/; --calib-samples N caps how many, default 128)"))
	}
	if o.Calib.Samples < 0 {
		return usage(fmt.Errorf("--calib-samples %d: want ≥ 1", o.Calib.Samples))
	}
	if len(o.Overrides) > 0 {
		return usage(fmt.Errorf("--method awq does not combine with per-tensor precisions (--precision auto)"))
	}
	base := o.quantMethod()
	switch {
	case base == quant.MethodAWQ:
		return usage(fmt.Errorf("--awq-base awq: the base must be a block method (rtn, mse or hqq)"))
	case base == quant.MethodHQQ && o.Precision == NF4:
		return usage(fmt.Errorf("--awq-base hqq optimises an int4 zero point; nf4 has none (use rtn or mse)"))
	case base == quant.MethodHQQ:
		o.Asymmetric = true
	}
	if _, err := quant.ParseMethod(string(base)); err != nil {
		return usage(fmt.Errorf("--awq-base: %w", err))
	}
	return nil
}
