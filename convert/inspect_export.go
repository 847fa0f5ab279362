package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/internal/manifest"
)

// ExportInspection summarises an export directory from its quantpack.json:
// the graph's operators (a mixed export shows MatMulNBits beside
// DynamicQuantizeMatMul beside MatMul), sizes, and the auto record.
type ExportInspection struct {
	Path         string          `json:"path"`
	Format       string          `json:"format"`
	Precision    ExportPrecision `json:"precision"`
	Architecture string          `json:"architecture"`
	Ops          map[string]int  `json:"ops"`
	Sizes        ExportSizes     `json:"sizes"`
	Auto         *AutoRecord     `json:"auto,omitempty"`
}

// InspectExport reads dir's quantpack.json when dir is an export (it has
// model.onnx and an export manifest); ok is false for anything else.
func InspectExport(dir string) (in *ExportInspection, ok bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
		return nil, false, nil
	}
	p := filepath.Join(dir, manifest.Name)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > maxManifestBytes {
		return nil, false, fmt.Errorf("%s: %w: larger than %d bytes", p, ErrArtifact, maxManifestBytes)
	}
	var m ExportManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, false, fmt.Errorf("%s: %w: %v", p, ErrArtifact, err)
	}
	if m.Format != ExportFormat {
		return nil, false, nil
	}
	return &ExportInspection{Path: dir, Format: m.Format, Precision: m.Precision, Architecture: m.Architecture, Ops: m.Ops,
		Sizes: m.Sizes, Auto: m.Auto}, true, nil
}
