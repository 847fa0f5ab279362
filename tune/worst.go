package tune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/manifest"
)

// LayerError is one quantized layer's weight error against FP32.
type LayerError struct {
	Name   string  `json:"name"`
	Scheme string  `json:"scheme"`
	SQNRdB float64 `json:"sqnr_db"`
	Cosine float64 `json:"cosine"`
}

// ErrNoSource is an export whose quantized weights cannot be traced back to
// a checkpoint on this machine.
var ErrNoSource = errors.New("tune: the export's source checkpoint is not available")

// WeightErrors is every quantized layer's weight error of an export, lowest
// SQNR first; nil for an export with nothing quantized. It reads the
// per-tensor error statistics of the export's source artifact, or, for an
// export made straight from a checkpoint, reconverts that checkpoint with
// the export's recorded scheme (including a --precision auto mix) into a
// temporary folder: a few seconds, no graph runs. verify's layer diagnosis
// (DiffLayers) shows it beside the measured per-layer error.
func WeightErrors(ctx context.Context, exportDir string) ([]LayerError, error) {
	b, err := os.ReadFile(filepath.Join(exportDir, manifest.Name))
	if err != nil {
		return nil, err
	}
	var em convert.ExportManifest
	if err := json.Unmarshal(b, &em); err != nil || em.Format != convert.ExportFormat {
		return nil, fmt.Errorf("%w: %s has no export manifest", ErrNoSource, exportDir)
	}
	if em.Precision == convert.ExportFP32 || em.Precision == convert.ExportFP16 {
		return nil, nil // nothing quantized
	}
	src := em.Source.Path
	if _, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNoSource, src)
	}
	var m *convert.Manifest
	if em.Source.Kind == "artifact" {
		if m, err = readArtifact(src); err != nil {
			return nil, err
		}
	} else {
		sc := em.Source.Scheme
		if sc == nil {
			return nil, fmt.Errorf("%w: %s records no scheme", ErrNoSource, exportDir)
		}
		bs := sc.BlockSize
		if sc.BlockPerTensor {
			bs = 0 // the per-tensor rule again, not one block for all
		}
		opt := convert.Options{Precision: convert.Precision(em.Precision), BlockSize: bs, DoubleQuant: convert.SwitchOf(sc.DoubleQuant),
			Asymmetric: sc.Symmetric != nil && !*sc.Symmetric, RestDType: restFlag(sc.RestDType), Keep: sc.Keep,
			Overrides: sc.Overrides}
		tmp, err := atomicfile.CreateDir(filepath.Join(os.TempDir(), fmt.Sprintf("quantpack-worst-%d", os.Getpid())))
		if err != nil {
			return nil, err
		}
		defer tmp.Abort()
		if m, err = convert.Convert(ctx, src, tmp.Join("a"), opt); err != nil {
			return nil, err
		}
	}
	var out []LayerError
	for _, r := range m.Tensors {
		if r.Error == nil || r.Error.SQNRdB == nil || (r.Role != convert.RoleLinear && r.Role != convert.RoleConv) {
			continue
		}
		switch r.Scheme {
		case convert.SchemeInt8, convert.SchemeInt8Ch, convert.SchemeInt4, convert.SchemeNF4:
		default:
			continue
		}
		out = append(out, LayerError{Name: r.Name, Scheme: r.Scheme, SQNRdB: *r.Error.SQNRdB, Cosine: r.Error.Cosine})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].SQNRdB < out[j].SQNRdB })
	return out, nil
}

func restFlag(scheme string) string {
	switch scheme {
	case convert.SchemeFP32:
		return "fp32"
	case convert.SchemeBF16:
		return "bf16"
	}
	return "fp16"
}

func readArtifact(dir string) (*convert.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifest.Name))
	if err != nil {
		return nil, err
	}
	var m convert.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &m, nil
}
