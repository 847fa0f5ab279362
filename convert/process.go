package convert

import (
	"fmt"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/quant"
)

// scratch holds one worker's buffers, grown to the largest tensor it has seen:
// memory stays bounded by the largest tensor times the thread count.
type scratch struct {
	raw  []byte
	f32  []float32
	deq  []float32
	u16  []uint16
	i8   []int8
	u8   []byte
	u8b  []byte
	f32b []float32
	f32c []float32
	f32d []float32 // nf4: absmax restored from double quant, for the statistics
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// processItem reads one source tensor, applies its scheme and writes every
// output tensor. It is the only place where tensor bodies are touched.
func processItem(it *item, ws map[string]*safetensors.Writer, sc *scratch, opt *Options) error {
	t := it.src.TensorInfo
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("tensor %q (%s): %w", t.Name, it.src.File.Name(), err)
	}
	write := func(name string, b []byte) error { return wrap(ws[name].WriteTensor(name, b)) }
	// Drop the source pages from our resident set once read: memory stays
	// bounded by the largest tensor, not the checkpoint.
	defer it.src.File.Release(t)
	n := int(t.NumElements())
	sc.f32 = grow(sc.f32, n)
	x := sc.f32
	if t.DType == safetensors.F32 && it.scheme != SchemeCopy && littleEndian {
		// Read float32 data straight into the working buffer: one copy
		// instead of two.
		if err := it.src.File.ReadTensor(t, bytesOfF32(x)); err != nil {
			return wrap(err)
		}
	} else {
		sc.raw = grow(sc.raw, int(t.Size))
		if err := it.src.File.ReadTensor(t, sc.raw); err != nil {
			return wrap(err)
		}
		if it.scheme == SchemeCopy {
			return writeParts(it, map[part][]byte{partWeight: sc.raw}, write)
		}
		if err := decodeFloat32(x, sc.raw, t.DType); err != nil {
			return wrap(err)
		}
	}
	awqUndo, err := opt.awqApply(it, x)
	if err != nil {
		return wrap(err)
	}
	stats := !opt.NoStats
	var deq []float32
	if stats {
		sc.deq = grow(sc.deq, n)
		deq = sc.deq
	}
	switch it.scheme {
	case SchemeFP32:
		if stats {
			copy(deq, x)
		}
		if err := writeParts(it, map[part][]byte{partWeight: bytesOfF32(x)}, write); err != nil {
			return err
		}
	case SchemeFP16, SchemeBF16:
		sc.u16 = grow(sc.u16, n)
		var ov int
		if it.scheme == SchemeFP16 {
			ov = quant.F32ToF16(sc.u16, x)
			if stats {
				quant.F16ToF32(deq, sc.u16)
			}
		} else {
			ov = quant.F32ToBF16(sc.u16, x)
			if stats {
				quant.BF16ToF32(deq, sc.u16)
			}
		}
		it.rec.Overflow = int64(ov)
		if err := writeParts(it, map[part][]byte{partWeight: bytesOfU16(sc.u16)}, write); err != nil {
			return err
		}
	case SchemeInt8, SchemeInt8Ch:
		rows := int(t.Shape[0])
		cols := n / max(rows, 1)
		sc.i8 = grow(sc.i8, n)
		sc.f32b = grow(sc.f32b, rows)
		if err := quant.QuantizeInt8Rows(sc.i8, sc.f32b, x, rows, cols); err != nil {
			return wrap(err)
		}
		if stats {
			if err := quant.DequantizeInt8Rows(deq, sc.i8, sc.f32b, rows, cols); err != nil {
				return wrap(err)
			}
		}
		if err := writeParts(it, map[part][]byte{partWeight: bytesOfI8(sc.i8), partAbsmax: bytesOfF32(sc.f32b)}, write); err != nil {
			return err
		}
	case SchemeInt4:
		if err := processInt4(it, sc, x, deq, opt, write); err != nil {
			return wrap(err)
		}
	case SchemeNF4:
		if err := processNF4(it, sc, x, deq, opt, write); err != nil {
			return wrap(err)
		}
	default:
		return wrap(fmt.Errorf("convert: internal: scheme %q", it.scheme))
	}
	if stats {
		if awqUndo != nil {
			x = awqUndo(deq) // compare in the original space
		}
		s := quant.Compare(x, deq)
		it.rec.Error = jsonStats(s)
		setNonFinite(it.rec, s.Ref, s.Got)
	} else {
		countNonFinite(it, sc, x)
	}
	return nil
}

// countNonFinite records the NaN and ±Inf values of a float tensor's source
// and output when the error statistics (which count them) are off. It costs
// one branch-free scan (of the fp16/bf16 codes, half the bytes, where the
// output is non-finite wherever the source is); values are counted one by
// one only in a tensor that has some.
func countNonFinite(it *item, sc *scratch, x []float32) {
	var src, out quant.NonFiniteCount
	switch it.scheme {
	case SchemeFP16, SchemeBF16:
		if quant.AllFinite16(sc.u16, it.scheme == SchemeBF16) {
			return
		}
		src = quant.CountNonFinite(x)
		sc.deq = grow(sc.deq, len(x))
		if it.scheme == SchemeFP16 {
			quant.F16ToF32(sc.deq, sc.u16)
		} else {
			quant.BF16ToF32(sc.deq, sc.u16)
		}
		out = quant.CountNonFinite(sc.deq)
	case SchemeFP32:
		src = quant.CountNonFinite(x)
		out = src
	default:
		// The quantizers refuse non-finite input (quant.ErrNonFinite);
		// with the statistics off their output is not reconstructed.
		return
	}
	setNonFinite(it.rec, src, out)
}

func setNonFinite(r *TensorRecord, src, out quant.NonFiniteCount) {
	if src.Any() || out.Any() {
		r.NonFinite = &NonFinite{Source: src, Output: out}
	}
}

func processInt4(it *item, sc *scratch, x, deq []float32, opt *Options, write func(string, []byte) error) error {
	t := it.src.TensorInfo
	nr, k := int(t.Shape[0]), int(t.Shape[1])
	p := quant.Int4Params{BlockSize: int(it.geom.Block), Symmetric: !it.geom.Asym}
	np, ns, nz := quant.Int4Sizes(nr, k, p)
	sc.u8 = grow(sc.u8, np)
	sc.f32b = grow(sc.f32b, ns)
	sc.u8b = grow(sc.u8b, nz)
	if err := quant.QuantizeInt4With(opt.quantMethod(), sc.u8, sc.f32b, sc.u8b, x, nr, k, p); err != nil {
		return err
	}
	if deq != nil {
		if err := quant.DequantizeInt4(deq, sc.u8, sc.f32b, sc.u8b, nr, k, p); err != nil {
			return err
		}
	}
	return writeParts(it, map[part][]byte{partWeight: sc.u8, partScale: bytesOfF32(sc.f32b), partZeroPoint: sc.u8b}, write)
}

func processNF4(it *item, sc *scratch, x, deq []float32, opt *Options, write func(string, []byte) error) error {
	n := len(x)
	bs := int(it.geom.Block)
	blocks := (n + bs - 1) / bs
	sc.u8 = grow(sc.u8, (n+1)/2)
	sc.f32b = grow(sc.f32b, blocks)
	if err := quant.QuantizeNF4With(opt.quantMethod(), sc.u8, sc.f32b, x, bs); err != nil {
		return err
	}
	data := map[part][]byte{partWeight: sc.u8}
	var offset *float64
	absmax := sc.f32b
	if it.geom.DoubleQuant {
		codes := grow(sc.u8b, blocks)
		sc.u8b = codes
		nb := (blocks + nestedBlock - 1) / nestedBlock
		sc.f32c = grow(sc.f32c, nb)
		off, err := quant.DoubleQuant(codes, sc.f32c, sc.f32b, nestedBlock)
		if err != nil {
			return err
		}
		data[partAbsmax], data[partNestedAbsmax] = codes, bytesOfF32(sc.f32c)
		offset = new(float64(off))
		it.rec.NestedOffset = &off
		if deq != nil {
			// Reconstruct with the absmax a loader will see.
			sc.f32d = grow(sc.f32d, blocks)
			restored := sc.f32d
			if err := quant.UndoDoubleQuant(restored, codes, sc.f32c, off, nestedBlock); err != nil {
				return err
			}
			absmax = restored
		}
	} else {
		data[partAbsmax] = bytesOfF32(sc.f32b)
	}
	js, err := nf4StateJSON(it.geom.nf4State(offset), false)
	if err != nil {
		return err
	}
	data[partQuantState] = js
	if deq != nil {
		if err := quant.DequantizeNF4(deq, sc.u8, absmax, bs); err != nil {
			return err
		}
	}
	return writeParts(it, data, write)
}

// writeParts writes every planned output of it, in plan order: the bytes
// data holds for its part, or the layout's fixed content (codebooks, format
// flags).
func writeParts(it *item, data map[part][]byte, write func(string, []byte) error) error {
	for i, o := range it.outs {
		p := it.parts[i]
		b, ok := data[p.Part]
		if !ok && p.Fixed != nil {
			b, ok = p.Fixed(), true
		}
		if !ok {
			return fmt.Errorf("convert: internal: no bytes for the %s of %q", p.Part, o.Name)
		}
		if err := write(o.Name, b); err != nil {
			return err
		}
	}
	return nil
}
