package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/quant"
)

// method is the 4-bit method in effect (rtn when none was asked for).
func (o *Options) method() quant.Method {
	if o.Method == "" {
		return quant.MethodRTN
	}
	return o.Method
}

// validateMethod checks --method against the precision. hqq optimises a zero
// point, so it turns on Asymmetric (the one place that implication lives).
func (o *Options) validateMethod() error {
	m, err := quant.ParseMethod(string(o.Method))
	if err != nil {
		return usage(err)
	}
	switch {
	case m == quant.MethodRTN:
	case o.Precision != Int4 && o.Precision != NF4:
		return usage(fmt.Errorf("--method %s applies to int4 and nf4 only", m))
	case m == quant.MethodHQQ && o.Precision == NF4:
		return usage(fmt.Errorf("--method hqq optimises an int4 zero point; nf4 has none (use mse)"))
	case m == quant.MethodHQQ:
		o.Asymmetric = true
	}
	o.Method = m
	return nil
}
