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

// validateMethod checks --method against the precision. hqq optimises a zero
// point, so it turns on Asymmetric (the one place that implication lives).
func (o *Options) validateMethod() error {
	m, err := quant.ParseMethod(string(o.method()))
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
	return nil
}
