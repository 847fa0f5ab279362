package convert

import (
	"fmt"
	"path"
	"strings"

	"github.com/quantpack/quantpack/formats/safetensors"
)

// Role is what a tensor is, as far as the precision policy cares.
type Role string

// Roles, decided by the rules in policyRules.
const (
	RoleLinear Role = "linear" // weight of a Linear layer: 2-D, both dims ≥ minLinearDim
	RoleConv   Role = "conv"   // convolution weight (4-D)
	RoleHead   Role = "head"   // task head, kept float by default
	RoleKeep   Role = "keep"   // matched a --keep glob, kept float
	RoleFloat  Role = "float"  // norms, biases, tokens, embeddings, tables
	RoleOther  Role = "other"  // non-float (I64 counters, BOOL masks): copied
)

// minLinearDim: Linear layers narrower than this stay float. Blocked formats
// need at least one block along K, and tiny layers gain nothing from
// quantization while their scales would cost more than they save.
const minLinearDim = 16

// Scheme names as they appear in the manifest.
const (
	SchemeCopy   = "copy"
	SchemeFP32   = "fp32"
	SchemeFP16   = "fp16"
	SchemeBF16   = "bf16"
	SchemeInt8   = "int8-rowwise"     // bitsandbytes LLM.int8 layout
	SchemeInt8Ch = "int8-per-channel" // convolutions, per output channel
	SchemeInt4   = "int4-block"       // MatMulNBits layout
	SchemeNF4    = "nf4-block"        // bitsandbytes Params4bit layout
)

// Precision is the --precision of convert.
type Precision string

// Precisions convert writes.
const (
	FP16 Precision = "fp16"
	BF16 Precision = "bf16"
	Int8 Precision = "int8"
	Int4 Precision = "int4"
	NF4  Precision = "nf4"
)

// Precisions lists the valid --precision values of convert.
var Precisions = []Precision{FP16, BF16, Int8, Int4, NF4}

// ParsePrecision validates a precision name.
func ParsePrecision(s string) (Precision, error) {
	for _, p := range Precisions {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown precision %q (want fp16, bf16, int8, int4 or nf4)", s)
}

// rule is one row of the policy table: the first rule whose match returns
// true gives the tensor's role.
type rule struct {
	why   string
	role  Role
	match func(a *Arch, keep []string, t safetensors.TensorInfo) bool
}

// policyRules is the precision policy of docs/design.md ("Precisions and
// artifact layouts") as data; tests read it.
var policyRules = []rule{
	{"not a float tensor: copied byte for byte", RoleOther, func(_ *Arch, _ []string, t safetensors.TensorInfo) bool {
		return !isFloat(t.DType)
	}},
	{"matches a --keep glob", RoleKeep, func(_ *Arch, keep []string, t safetensors.TensorInfo) bool {
		return matchAny(keep, t.Name)
	}},
	{"task head: stays float like bitsandbytes' classifier", RoleHead, func(a *Arch, _ []string, t safetensors.TensorInfo) bool {
		return a.isHead(t.Name)
	}},
	{"Linear weight: 2-D .weight with both dims ≥ 16", RoleLinear, func(_ *Arch, _ []string, t safetensors.TensorInfo) bool {
		return strings.HasSuffix(t.Name, ".weight") && len(t.Shape) == 2 &&
			t.Shape[0] >= minLinearDim && t.Shape[1] >= minLinearDim
	}},
	{"convolution weight: 4-D .weight", RoleConv, func(_ *Arch, _ []string, t safetensors.TensorInfo) bool {
		return strings.HasSuffix(t.Name, ".weight") && len(t.Shape) == 4
	}},
	{"other float tensor: norms, biases, tokens, embeddings, tables", RoleFloat, func(*Arch, []string, safetensors.TensorInfo) bool {
		return true
	}},
}

// RoleOf applies the policy table to one tensor.
func RoleOf(a *Arch, keep []string, t safetensors.TensorInfo) Role {
	for _, r := range policyRules {
		if r.match(a, keep, t) {
			return r.role
		}
	}
	return RoleFloat
}

// SchemeFor returns the scheme a tensor of the given role gets at a
// precision, with rest the dtype of tensors that stay float.
func SchemeFor(a *Arch, role Role, p Precision, rest string) string {
	switch role {
	case RoleOther:
		return SchemeCopy
	case RoleLinear:
		switch p {
		case Int8:
			return SchemeInt8
		case Int4:
			return SchemeInt4
		case NF4:
			return SchemeNF4
		}
	case RoleConv:
		if a.quantizeConvs() && (p == Int8 || p == Int4 || p == NF4) {
			return SchemeInt8Ch
		}
	}
	switch p {
	case FP16:
		return SchemeFP16
	case BF16:
		return SchemeBF16
	}
	return rest
}

// ValidateGlobs checks --keep patterns before any work starts.
func ValidateGlobs(globs []string) error {
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("--keep %q: %w", g, err)
		}
	}
	return nil
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
		// A glob without wildcards also matches a module prefix, so
		// --keep vit.encoder.layer.0 keeps that whole layer.
		if !strings.ContainsAny(g, "*?[") && strings.HasPrefix(name, g+".") {
			return true
		}
	}
	return false
}

func isFloat(d safetensors.DType) bool {
	switch d {
	case safetensors.F16, safetensors.BF16, safetensors.F32, safetensors.F64:
		return true
	}
	return false
}
