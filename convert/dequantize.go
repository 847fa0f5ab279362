package convert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/hfconfig"
	"github.com/quantpack/quantpack/internal/safeio"
	"github.com/quantpack/quantpack/quant"
)

// Dequantized records, in an artifact's manifest, that its source was
// already quantized and was dequantized to float32 before this conversion
// (Options.DequantizeInput): the error statistics then compare with those
// reconstructed weights, not with the original float model, whose error
// adds to these.
type Dequantized struct {
	Schemes []string `json:"schemes"` // the layouts found, as inspect names them
	Tensors int      `json:"tensors"` // weights dequantized
	Note    string   `json:"note"`
}

// dequantNote is Dequantized.Note.
const dequantNote = "source was already quantized; its weights were dequantized to float32 and requantized, so the error statistics leave out the first quantization's error"

// dequantizeSource writes a float32 checkpoint of the quantized source s
// into a temporary directory beside out and opens it: every quantized weight
// (bitsandbytes int8 and nf4, quantpack int4 and per-channel int8) replaced
// by its reconstruction, their scales, maps and states dropped, every other
// tensor copied. The caller converts the returned source and then calls
// cleanup, which removes the temporary checkpoint. Memory is bounded by the
// largest tensor.
func dequantizeSource(ctx context.Context, s *Source, out string, generic bool) (ds *Source, cleanup func(), err error) {
	found, qweights := QuantSchemes(s.Ckpt)
	tmp, err := atomicfile.CreateDir(filepath.Join(filepath.Dir(filepath.Clean(out)), filepath.Base(out)+".dequantized"))
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			tmp.Abort()
		}
	}()
	// int4 keeps K only in the manifest's record (a layout padded to whole
	// blocks does not show it).
	var recs map[string]*TensorRecord
	if s.Dir != "" {
		if m, err := readArtifactManifest(s.Dir); err == nil && m != nil {
			recs = newWeights(s.Dir, s.Ckpt, m).recs
		}
	}
	d := &dequantizer{b: &builder{w: newWeights(s.Path, s.Ckpt, nil)}, recs: recs, drop: map[string]bool{}}
	var specs []safetensors.TensorSpec
	plans := map[string]func() ([]float32, error){}
	for _, e := range s.Ckpt.Tensors() {
		if !qweights[e.Name] {
			continue
		}
		shape, fn, err := d.plan(e)
		if err != nil {
			return nil, nil, err
		}
		specs = append(specs, safetensors.TensorSpec{Name: e.Name, DType: safetensors.F32, Shape: shape})
		plans[e.Name] = fn
	}
	for _, e := range s.Ckpt.Tensors() {
		if !qweights[e.Name] && !d.drop[e.Name] {
			specs = append(specs, safetensors.TensorSpec{Name: e.Name, DType: e.DType, Shape: e.Shape})
		}
	}
	w, err := safetensors.Create(tmp.Join("model.safetensors"), map[string]string{"format": "pt"}, specs)
	if err != nil {
		return nil, nil, err
	}
	defer w.Abort()
	for _, sp := range specs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		var data []byte
		if fn := plans[sp.Name]; fn != nil {
			v, err := fn()
			if err != nil {
				return nil, nil, err
			}
			data = bytesOfF32(v)
		} else {
			e, _ := s.Ckpt.Lookup(sp.Name)
			if data, err = readRaw(e); err != nil {
				return nil, nil, err
			}
		}
		if err := w.WriteTensor(sp.Name, data); err != nil {
			return nil, nil, err
		}
	}
	if err := w.Commit(); err != nil {
		return nil, nil, err
	}
	if s.Config != nil {
		cfg := *s.Config
		cfg.Raw = cloneRaw(s.Config.Raw)
		delete(cfg.Raw, "quantization_config")
		cfg.Set("torch_dtype", "float32")
		b, err := cfg.Marshal()
		if err != nil {
			return nil, nil, err
		}
		if err := atomicfile.WriteFile(tmp.Join("config.json"), b); err != nil {
			return nil, nil, err
		}
		pp, err := safeio.ReadFile(filepath.Join(s.Dir, "preprocessor_config.json"), hfconfig.MaxPreprocessorBytes)
		if err == nil {
			err = atomicfile.WriteFile(tmp.Join("preprocessor_config.json"), pp)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, err
		}
	}
	src := tmp.Tmp()
	if s.Config == nil {
		src = tmp.Join("model.safetensors")
	}
	if ds, err = openSource(src, generic, false); err != nil {
		return nil, nil, err
	}
	var schemes []string
	for _, q := range found {
		schemes = append(schemes, q.Scheme)
	}
	ds.dequantized = &Dequantized{Schemes: schemes, Tensors: len(plans), Note: dequantNote}
	ds.hashFiles = s.Ckpt.Files()
	ds.Path = s.Path
	return ds, func() { ds.Close(); tmp.Abort() }, nil
}

// dequantizer reconstructs quantized weights, checking every layout as
// export does (it reuses export's readers of stored tensors).
type dequantizer struct {
	b    *builder
	recs map[string]*TensorRecord // the artifact's records, when it has a manifest
	drop map[string]bool          // scales, maps and states consumed
}

// plan returns the float32 shape of quantized weight e and a function that
// reconstructs it.
func (d *dequantizer) plan(e safetensors.Entry) ([]int64, func() ([]float32, error), error) {
	w, name := d.b.w, e.Name
	has := func(n string) bool { _, ok := w.ckpt.Lookup(n); return ok }
	fail := func() error {
		if d.b.err != nil {
			return d.b.err
		}
		return tensorErr(w.path, name, ErrUnsupported, "cannot be dequantized")
	}
	nf4, i8, i8c, i4 := mustLayout(SchemeNF4), mustLayout(SchemeInt8), mustLayout(SchemeInt8Ch), mustLayout(SchemeInt4)
	drop := func(l *layout) {
		for _, c := range l.companions(name) {
			d.drop[c] = true
		}
	}
	switch {
	case has(nf4.name(name, partQuantState)):
		drop(nf4)
		st, err := d.nf4Shape(name)
		if err != nil {
			return nil, nil, err
		}
		shape := st.Shape
		return shape, func() ([]float32, error) {
			st, err := d.b.nf4State(name, shape[0], shape[1])
			if err != nil {
				return nil, err
			}
			n := shape[0] * shape[1]
			packed, err := w.stored(name, nf4.accepts(partWeight), nil)
			if err != nil {
				return nil, err
			}
			if packed.Size != (n+1)/2 {
				return nil, tensorErr(w.path, name, ErrTensorShape, "holds %d bytes, %d nf4 codes need %d", packed.Size, n, (n+1)/2)
			}
			absmax, err := d.b.nf4Absmax(name, st, n)
			if err != nil {
				return nil, err
			}
			codes, err := readRaw(packed)
			if err != nil {
				return nil, err
			}
			out := make([]float32, n)
			return out, quant.DequantizeNF4(out, codes, absmax, st.BlockSize)
		}, nil
	case has(i8.name(name, partAbsmax)) && i8.holds(e.DType) && len(e.Shape) == 2:
		drop(i8)
		rows, cols := e.Shape[0], e.Shape[1]
		return e.Shape, func() ([]float32, error) {
			scb := d.b.partFloats(i8, partAbsmax, name, geom{Shape: e.Shape})
			if scb == nil {
				return nil, fail()
			}
			return dequantRows(e, scb, rows, cols)
		}, nil
	case has(i8c.name(name, partAbsmax)) && i8c.holds(e.DType) && len(e.Shape) >= 1 && e.Shape[0] > 0:
		drop(i8c)
		rows := e.Shape[0]
		cols := e.NumElements() / rows
		return e.Shape, func() ([]float32, error) {
			absmax := d.b.partFloats(i8c, partAbsmax, name, geom{Shape: e.Shape})
			if absmax == nil {
				return nil, fail()
			}
			return dequantRows(e, absmax, rows, cols)
		}, nil
	case has(i4.name(name, partScale)) && i4.holds(e.DType) && len(e.Shape) == 3:
		drop(i4)
		n, kb, bs := e.Shape[0], e.Shape[1], 2*e.Shape[2]
		k := kb * bs
		if r := d.recs[name]; r != nil && len(r.Shape) == 2 && r.Shape[0] == n && (r.Shape[1]+bs-1)/bs == kb {
			k = r.Shape[1]
		}
		return []int64{n, k}, func() ([]float32, error) {
			if bs < 16 || bs&(bs-1) != 0 {
				return nil, tensorErr(w.path, name, ErrTensorShape, "has shape %v: block %d is not a power of two ≥ 16", e.Shape, bs)
			}
			g := geom{Shape: []int64{n, k}, Block: bs}
			se, err := d.b.storedPart(i4, partScale, name, g)
			if err != nil {
				return nil, err
			}
			scales, err := readFloat32(se)
			if err != nil {
				return nil, err
			}
			var zp []byte
			p := quant.Int4Params{BlockSize: int(bs), Symmetric: true}
			if has(i4.name(name, partZeroPoint)) {
				ze, err := d.b.storedPart(i4, partZeroPoint, name, g)
				if err != nil {
					return nil, err
				}
				if zp, err = readRaw(ze); err != nil {
					return nil, err
				}
				p.Symmetric = false
			}
			codes, err := readRaw(e)
			if err != nil {
				return nil, err
			}
			out := make([]float32, n*k)
			if err := quant.DequantizeInt4(out, codes, scales, zp, int(n), int(k), p); err != nil {
				return nil, fmt.Errorf("%s: %q: %w", w.path, name, err)
			}
			return out, nil
		}, nil
	}
	return nil, nil, tensorErr(w.path, name, ErrUnsupported, "is quantized in a layout quantpack cannot dequantize (dtype %s, shape %v)", e.DType, e.Shape)
}

// nf4Shape reads the logical shape from the quant_state, which must be 2-D.
func (d *dequantizer) nf4Shape(name string) (nf4State, error) {
	// nf4State checks the shape against what it is given; read the state
	// once with the shape it declares.
	var st nf4State
	l := mustLayout(SchemeNF4)
	e, err := d.b.w.stored(l.name(name, partQuantState), l.accepts(partQuantState), nil)
	if err != nil {
		return st, err
	}
	if e.Size > maxQuantStateBytes {
		return st, tensorErr(e.File.Name(), e.Name, ErrTensorShape, "is %d bytes (limit %d)", e.Size, maxQuantStateBytes)
	}
	raw, err := readRaw(e)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil || len(st.Shape) != 2 || st.Shape[0] <= 0 || st.Shape[1] <= 0 ||
		st.Shape[0] > 1<<31 || st.Shape[1] > 1<<31 {
		return st, tensorErr(e.File.Name(), e.Name, ErrTensorShape, "declares shape %v (%v); want a 2-D weight", st.Shape, err)
	}
	if !strings.EqualFold(st.QuantType, "nf4") {
		return st, tensorErr(e.File.Name(), e.Name, ErrUnsupported, "quant_type %q (only nf4 can be dequantized)", st.QuantType)
	}
	return st, nil
}

// dequantRows reconstructs w = q·scale/127 per row (bitsandbytes int8 and
// quantpack's per-channel convolutions).
func dequantRows(e safetensors.Entry, scale []float32, rows, cols int64) ([]float32, error) {
	raw, err := readRaw(e)
	if err != nil {
		return nil, err
	}
	q := make([]int8, len(raw))
	for i, b := range raw {
		q[i] = int8(b)
	}
	out := make([]float32, rows*cols)
	if err := quant.DequantizeInt8Rows(out, q, scale, int(rows), int(cols)); err != nil {
		return nil, fmt.Errorf("%s: %q: %w", e.File.Name(), e.Name, err)
	}
	return out, nil
}
