package convert

import (
	"fmt"
	"sort"
)

// AutoRecord is the "auto" member of quantpack.json for an artifact or
// export made by --precision auto: the target, what the search reached, the
// measured result and each quantizable tensor's precision and scheme. The
// search itself lives in package tune; convert only writes what it is given.
type AutoRecord struct {
	// Target is the goal as given, e.g. "top1_drop <= 0.5%" or
	// "cosine_mean >= 0.9995".
	Target string `json:"target"`
	// Reached is true when the measured result meets Target.
	Reached bool `json:"reached"`
	// Stop says why the search ended: "target reached", "unreachable",
	// "budget", "interrupted".
	Stop       string   `json:"stop"`
	Candidates []string `json:"candidates"`
	// Calibration names the inputs of the search (a folder, or
	// "synthetic N").
	Calibration string `json:"calibration"`
	Samples     int    `json:"samples"`
	// Evaluations is the number of mixed graphs run; Seconds the search's
	// wall time.
	Evaluations int     `json:"evaluations"`
	Seconds     float64 `json:"seconds"`
	// Measured is the chosen mix's result on the calibration inputs during
	// the search; Confirmed the written artifact's own run on them
	// afterwards (nil until it ran).
	Measured  AutoMetrics  `json:"measured"`
	Confirmed *AutoMetrics `json:"confirmed,omitempty"`
	// Mix counts the quantizable tensors per precision.
	Mix map[string]int `json:"mix"`
	// Layers lists every quantizable tensor in network order.
	Layers []AutoLayer `json:"layers"`
}

// AutoMetrics are a mixed graph's figures against the FP32 graph on the
// calibration inputs. Top1Drop and the accuracies are set only when the
// inputs have labels; Top1Drop is in percentage points.
type AutoMetrics struct {
	Top1Agreement float64  `json:"top1_agreement"`
	CosineMean    float64  `json:"cosine_mean"`
	CosineMin     float64  `json:"cosine_min"`
	KLMean        float64  `json:"kl_mean"`
	BaselineTop1  *float64 `json:"baseline_top1,omitempty"`
	Top1          *float64 `json:"top1,omitempty"`
	Top1Drop      *float64 `json:"top1_drop_pct,omitempty"`
	// SizeRatio is the mixed weights' bytes over FP32's (quantizable
	// tensors and the rest, as the artifact stores them).
	SizeRatio float64 `json:"size_ratio"`
}

// AutoLayer is one quantizable tensor's choice.
type AutoLayer struct {
	Name      string    `json:"name"`
	Precision Precision `json:"precision"`
	Scheme    string    `json:"scheme"`
}

// precisionOf is the precision a tensor of the given role is converted at:
// its override when it is quantizable and has one, else opt.Precision.
func (o *Options) precisionOf(name string, role Role) Precision {
	if p, ok := o.Overrides[name]; ok && (role == RoleLinear || role == RoleConv) {
		return p
	}
	return o.Precision
}

// validateOverrides checks the per-tensor precisions. int4 and nf4 cannot
// be mixed: one block size serves both and their defaults differ.
func (o *Options) validateOverrides() error {
	if len(o.Overrides) == 0 {
		return nil
	}
	names := make([]string, 0, len(o.Overrides))
	for n := range o.Overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	four := map[Precision]bool{}
	if o.Precision == Int4 || o.Precision == NF4 {
		four[o.Precision] = true
	}
	for _, n := range names {
		p := o.Overrides[n]
		switch p {
		case FP16, Int8, Int4, NF4:
		default:
			return fmt.Errorf("precision override %q for %q: want fp16, int8, int4 or nf4", p, n)
		}
		if p == Int4 || p == NF4 {
			four[p] = true
		}
		if o.Precision == FP16 || o.Precision == BF16 {
			return fmt.Errorf("precision overrides need an int8, int4 or nf4 base precision, not %s", o.Precision)
		}
	}
	if len(four) > 1 {
		return fmt.Errorf("precision overrides mix int4 and nf4; pick one 4-bit format")
	}
	if !four[o.Precision] && len(four) > 0 {
		// The block size and double quant follow the base precision.
		return fmt.Errorf("precision overrides to 4-bit need a 4-bit base precision, not %s", o.Precision)
	}
	return nil
}

// isFloatScheme reports the schemes that keep a tensor float.
func isFloatScheme(s string) bool {
	switch s {
	case SchemeFP32, SchemeFP16, SchemeBF16:
		return true
	}
	return false
}
