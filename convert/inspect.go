package convert

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/safeio"
)

// Inspection is what `quantpack inspect` reports about a checkpoint or
// artifact. It is also inspect's --json schema.
type Inspection struct {
	Path         string            `json:"path"`
	Files        []string          `json:"files"`
	Architecture string            `json:"architecture,omitempty"`
	Supported    bool              `json:"supported"`
	ModelType    string            `json:"model_type,omitempty"`
	TorchDType   string            `json:"torch_dtype,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Tensors      []InspectTensor   `json:"tensors"`
	Totals       InspectTotals     `json:"totals"`
	DTypes       map[string]int64  `json:"dtypes"` // bytes per dtype
	Quantization []QuantFound      `json:"quantization"`
	Artifact     *ArtifactInfo     `json:"artifact,omitempty"`
}

// InspectTensor is one tensor.
type InspectTensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Bytes int64   `json:"bytes"`
	File  string  `json:"file,omitempty"`
}

// InspectTotals sums the checkpoint.
type InspectTotals struct {
	Tensors int   `json:"tensors"`
	Bytes   int64 `json:"bytes"`
	// Params counts logical parameters: float elements, plus the original
	// element count of every quantized weight found.
	Params int64 `json:"params"`
}

// QuantFound is one quantization scheme found among the tensors.
type QuantFound struct {
	Scheme  string   `json:"scheme"` // bnb-int8, bnb-nf4, bnb-fp4, quantpack-int4, int8-per-channel
	Writer  string   `json:"writer"` // who writes this layout
	Tensors int      `json:"tensors"`
	Params  int64    `json:"params"`
	Details []string `json:"details,omitempty"`
	// Blocks counts the weights of each block size (quantpack-int4, whose
	// block can differ per tensor: docs/accuracy.md, "Per-tensor block
	// size"), keyed by the block.
	Blocks map[int]int `json:"blocks,omitempty"`
}

// ArtifactInfo summarises a quantpack.json found beside the tensors.
type ArtifactInfo struct {
	Format    string `json:"format"`
	Precision string `json:"precision"`
	Tool      string `json:"tool_version"`
	Files     int    `json:"files"`
	// Auto is the --precision auto record, when there is one.
	Auto *AutoRecord `json:"auto,omitempty"`
}

// Inspect reads a checkpoint directory, a .safetensors file or a quantpack
// artifact without touching tensor bodies (except bitsandbytes' small
// quant_state JSON tensors).
func Inspect(path string) (*Inspection, error) {
	ck, err := safetensors.OpenCheckpoint(path)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	in := &Inspection{Path: path, Files: ck.Files(), Metadata: ck.Metadata(), DTypes: map[string]int64{}}
	dir := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		dir = filepath.Dir(path)
	}
	if cfg, err := LoadConfig(dir); err == nil {
		in.Architecture = cfg.Architecture()
		_, aerr := LookupArch(in.Architecture)
		in.Supported = aerr == nil
		in.ModelType = cfg.ModelType()
		in.TorchDType = cfg.String("torch_dtype", "")
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	if b, err := safeio.ReadFile(filepath.Join(dir, manifest.Name), maxManifestBytes); err == nil {
		var m struct {
			Format      string `json:"format"`
			Precision   string `json:"precision"`
			ToolVersion string `json:"tool_version"`
			Files       []manifest.File
			Auto        *AutoRecord `json:"auto"`
		}
		if json.Unmarshal(b, &m) == nil && m.Format != "" {
			in.Artifact = &ArtifactInfo{Format: m.Format, Precision: m.Precision, Tool: m.ToolVersion, Files: len(m.Files), Auto: m.Auto}
		}
	}
	for _, e := range ck.Tensors() {
		in.Tensors = append(in.Tensors, InspectTensor{Name: e.Name, DType: string(e.DType), Shape: nonNil(e.Shape),
			Bytes: e.Size, File: filepath.Base(e.File.Name())})
		in.Totals.Tensors++
		in.Totals.Bytes += e.Size
		in.DTypes[string(e.DType)] += e.Size
	}
	var quantWeights map[string]bool
	in.Quantization, quantWeights = QuantSchemes(ck)
	has := func(n string) bool { _, ok := ck.Lookup(n); return ok }
	for _, e := range ck.Tensors() {
		if isFloat(e.DType) && !quantWeights[e.Name] && !isQuantAux(e.Name, has) {
			in.Totals.Params += e.NumElements()
		}
	}
	for _, q := range in.Quantization {
		in.Totals.Params += q.Params
	}
	return in, nil
}

// QuantSchemes finds the quantization layouts among a checkpoint's tensors
// (bitsandbytes int8 and 4-bit, quantpack int4 and per-channel int8), sorted
// by scheme, and the names of the quantized weights. It reads no tensor body
// except bitsandbytes' small quant_state JSON.
func QuantSchemes(ck *safetensors.Checkpoint) ([]QuantFound, map[string]bool) {
	byName := map[string]safetensors.Entry{}
	for _, e := range ck.Tensors() {
		byName[e.Name] = e
	}
	found := map[string]*QuantFound{}
	add := func(scheme, writer string, params int64, detail string) *QuantFound {
		q := found[scheme]
		if q == nil {
			q = &QuantFound{Scheme: scheme, Writer: writer}
			found[scheme] = q
		}
		q.Tensors++
		q.Params += params
		if detail != "" && !slices.Contains(q.Details, detail) {
			q.Details = append(q.Details, detail)
		}
		return q
	}
	quantWeights := map[string]bool{}
	has := func(n string) bool { _, ok := byName[n]; return ok }
	for _, e := range ck.Tensors() {
		n := e.Name
		if i := strings.Index(n, bnb4StatePrefix); i >= 0 {
			kind := n[i+len(bnb4StatePrefix):]
			params, detail := bnb4Params(e)
			add("bnb-"+kind, bnb4Writer, params, detail)
			quantWeights[n[:i]] = true
			continue
		}
		for _, l := range layouts {
			if l.Marker == "" || l.Marker == partQuantState {
				continue
			}
			wname, ok := l.part(l.Marker).owner(n)
			w, found := byName[wname]
			if !ok || !found || !l.holds(w.DType) {
				continue
			}
			if params, detail, ok := recognise(l, w, e, has); ok {
				q := add(l.Found, l.Writer, params, detail)
				if l.Scheme == SchemeInt4 {
					if q.Blocks == nil {
						q.Blocks = map[int]int{}
					}
					q.Blocks[int(w.Shape[2]*2)]++ // recognise checked the shape
				}
				quantWeights[w.Name] = true
				break
			}
		}
	}
	var out []QuantFound
	for _, q := range found {
		out = append(out, *q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scheme < out[j].Scheme })
	return out, quantWeights
}

// recognise checks that weight w and marker m (layout l's Marker part)
// agree, and returns the weight's logical parameter count and inspect's
// detail line.
func recognise(l *layout, w, m safetensors.Entry, has func(string) bool) (int64, string, bool) {
	switch l.Scheme {
	case SchemeInt8:
		return w.NumElements(), "rowwise absmax, w = q*SCB/127", true
	case SchemeInt8Ch:
		return w.NumElements(), "", true
	case SchemeInt4:
		if len(w.Shape) != 3 || len(m.Shape) != 2 {
			return 0, "", false
		}
		bs := w.Shape[2] * 2
		detail := "block " + strconv.Itoa(int(bs)) + ", symmetric"
		if has(l.name(w.Name, partZeroPoint)) {
			detail = "block " + strconv.Itoa(int(bs)) + ", asymmetric"
		}
		return w.Shape[0] * w.Shape[1] * bs, detail, true
	}
	return 0, "", false
}

// bnb4Params reads a bitsandbytes 4-bit quant_state (nf4 or fp4) for the
// weight's parameter count and inspect's detail line; 0 and "" when it
// cannot be read.
func bnb4Params(e safetensors.Entry) (int64, string) {
	var st struct {
		QuantType string  `json:"quant_type"`
		BlockSize int     `json:"blocksize"`
		Shape     []int64 `json:"shape"`
		Nested    int     `json:"nested_blocksize"`
	}
	// The state is tiny (a few hundred bytes); cap it anyway.
	if e.Size > 4096 {
		return 0, ""
	}
	buf := make([]byte, e.Size)
	if e.File.ReadTensor(e.TensorInfo, buf) != nil || json.Unmarshal(buf, &st) != nil {
		return 0, ""
	}
	params := int64(1)
	for _, d := range st.Shape {
		params *= d
	}
	detail := "block " + strconv.Itoa(st.BlockSize)
	if st.Nested > 0 {
		detail += ", double quant (nested block " + strconv.Itoa(st.Nested) + ")"
	}
	return params, detail
}

// isQuantAux reports a tensor that is a scale, map or state of a weight the
// checkpoint holds (has), by the names of every layout's parts.
func isQuantAux(n string, has func(string) bool) bool {
	for _, l := range layouts {
		for _, p := range l.Parts {
			if w, ok := p.owner(n); ok && has(w) {
				return true
			}
		}
	}
	return false
}

func nonNil(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}
