package ort

// Tiny ONNX models encoded by hand with protowire, so these tests depend on
// nothing but the protobuf wire format (field numbers from onnx.proto).

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// onnx.proto TensorProto.DataType values.
const (
	tFloat   = 1
	tInt64   = 7
	tFloat16 = 10
)

func msg(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func str(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func varint(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// dim is a TensorShapeProto.Dimension: int64 (dim_value), string
// (dim_param) or nil (unknown).
type dim = any

// valueInfo encodes a ValueInfoProto of a tensor. With no dims at all the
// shape is left out (unknown rank).
func valueInfo(name string, elem int64, dims ...dim) []byte {
	var shape []byte
	for _, d := range dims {
		var dm []byte
		switch v := d.(type) {
		case int:
			dm = varint(dm, 1, int64(v))
		case string:
			dm = str(dm, 2, v)
		}
		shape = msg(shape, 1, dm)
	}
	tt := varint(nil, 1, elem)
	if dims != nil {
		tt = msg(tt, 2, shape)
	}
	typ := msg(nil, 1, tt)
	return msg(str(nil, 1, name), 2, typ)
}

// attr encodes an AttributeProto of type INT.
func attrInt(name string, v int64) []byte {
	a := str(nil, 1, name)
	a = varint(a, 3, v)
	return varint(a, 20, 2)
}

func node(op, name string, in, out []string, attrs ...[]byte) []byte {
	var n []byte
	for _, s := range in {
		n = str(n, 1, s)
	}
	for _, s := range out {
		n = str(n, 2, s)
	}
	n = str(n, 3, name)
	n = str(n, 4, op)
	for _, a := range attrs {
		n = msg(n, 5, a)
	}
	return n
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func i64Bytes(v []int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}

// initializer encodes a TensorProto with raw_data.
func initializer(name string, elem int64, dims []int64, raw []byte) []byte {
	var t []byte
	for _, d := range dims {
		t = varint(t, 1, d)
	}
	t = varint(t, 2, elem)
	t = str(t, 8, name)
	t = msg(t, 9, raw)
	return t
}

// externalInitializer encodes a TensorProto whose data lives in file
// location at offset (data_location EXTERNAL).
func externalInitializer(name string, elem int64, dims []int64, location string, offset, length int64) []byte {
	var t []byte
	for _, d := range dims {
		t = varint(t, 1, d)
	}
	t = varint(t, 2, elem)
	t = str(t, 8, name)
	entry := func(k, v string) []byte { return str(str(nil, 1, k), 2, v) }
	t = msg(t, 13, entry("location", location))
	t = msg(t, 13, entry("offset", itoa(offset)))
	t = msg(t, 13, entry("length", itoa(length)))
	return varint(t, 14, 1)
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

type graphSpec struct {
	nodes, inits, inputs, outputs [][]byte
}

// model encodes a ModelProto (IR version 8, default-domain opset 17).
func model(g graphSpec) []byte {
	var gb []byte
	for _, n := range g.nodes {
		gb = msg(gb, 1, n)
	}
	gb = str(gb, 2, "test")
	for _, t := range g.inits {
		gb = msg(gb, 5, t)
	}
	for _, v := range g.inputs {
		gb = msg(gb, 11, v)
	}
	for _, v := range g.outputs {
		gb = msg(gb, 12, v)
	}
	m := varint(nil, 1, 8)
	m = str(m, 2, "quantpack-test")
	m = msg(m, 7, gb)
	return msg(m, 8, varint(nil, 2, 17))
}

// linear describes Y = X·W + B with X [batch,k], W [k,n], B [n], and
// label = ArgMax(Y, axis 1) as int64 [batch].
type linear struct {
	k, n int
	w, b []float32
}

func newLinear(k, n int) linear {
	l := linear{k: k, n: n, w: make([]float32, k*n), b: make([]float32, n)}
	for i := range l.w {
		l.w[i] = float32(math.Sin(float64(i)*0.7)) * 0.5
	}
	for i := range l.b {
		l.b[i] = float32(i) * 0.25
	}
	return l
}

// model encodes the graph; yDims declares Y's shape (nil: unknown rank).
// With external set, W lives in that file (written by the caller with
// f32Bytes(l.w)) instead of in the model.
func (l linear) model(external string, yDims ...dim) []byte {
	w := initializer("W", tFloat, []int64{int64(l.k), int64(l.n)}, f32Bytes(l.w))
	if external != "" {
		w = externalInitializer("W", tFloat, []int64{int64(l.k), int64(l.n)}, external, 0, int64(4*len(l.w)))
	}
	return model(graphSpec{
		nodes: [][]byte{
			node("MatMul", "matmul", []string{"X", "W"}, []string{"XW"}),
			node("Add", "add", []string{"XW", "B"}, []string{"Y"}),
			node("ArgMax", "argmax", []string{"Y"}, []string{"label"}, attrInt("axis", 1), attrInt("keepdims", 0)),
		},
		inits:   [][]byte{w, initializer("B", tFloat, []int64{int64(l.n)}, f32Bytes(l.b))},
		inputs:  [][]byte{valueInfo("X", tFloat, "batch", l.k)},
		outputs: [][]byte{valueInfo("Y", tFloat, yDims...), valueInfo("label", tInt64, "batch")},
	})
}

// reference computes Y and label in float64.
func (l linear) reference(x []float32, batch int) ([]float64, []int64) {
	y := make([]float64, batch*l.n)
	label := make([]int64, batch)
	for r := 0; r < batch; r++ {
		for c := 0; c < l.n; c++ {
			s := float64(l.b[c])
			for i := 0; i < l.k; i++ {
				s += float64(x[r*l.k+i]) * float64(l.w[i*l.n+c])
			}
			y[r*l.n+c] = s
			if c > 0 && s > y[r*l.n+int(label[r])] {
				label[r] = int64(c)
			}
		}
	}
	return y, label
}

// castModel: half = Cast(X to float16), full = Cast(H to float32), with X
// float32 and H float16, both [batch, 4]. halfDims declares half's shape.
func castModel(halfDims ...dim) []byte {
	return model(graphSpec{
		nodes: [][]byte{
			node("Cast", "to_half", []string{"X"}, []string{"half"}, attrInt("to", tFloat16)),
			node("Cast", "to_full", []string{"H"}, []string{"full"}, attrInt("to", tFloat)),
		},
		inputs:  [][]byte{valueInfo("X", tFloat, "batch", 4), valueInfo("H", tFloat16, "batch", 4)},
		outputs: [][]byte{valueInfo("half", tFloat16, halfDims...), valueInfo("full", tFloat, "batch", 4)},
	})
}

// reshapeModel: Y = Cast(Reshape(X, S), to) for X float32 [n] and S int64
// [2]: Y's dimensions depend on S's values, so no one knows them before the
// run and ONNX Runtime must allocate Y.
func reshapeModel(to int64) []byte {
	return model(graphSpec{
		nodes: [][]byte{
			node("Reshape", "reshape", []string{"X", "S"}, []string{"R"}),
			node("Cast", "cast", []string{"R"}, []string{"Y"}, attrInt("to", to)),
		},
		inputs:  [][]byte{valueInfo("X", tFloat, "n"), valueInfo("S", tInt64, 2)},
		outputs: [][]byte{valueInfo("Y", to)},
	})
}

// scaleModel: O = I * 3 for int64 I [n].
func scaleModel() []byte {
	return model(graphSpec{
		nodes:   [][]byte{node("Mul", "mul", []string{"I", "three"}, []string{"O"})},
		inits:   [][]byte{initializer("three", tInt64, nil, i64Bytes([]int64{3}))},
		inputs:  [][]byte{valueInfo("I", tInt64, "n")},
		outputs: [][]byte{valueInfo("O", tInt64, "n")},
	})
}

// chainModel multiplies X [size,size] by W depth times: slow enough to
// cancel mid-run.
func chainModel(size, depth int) []byte {
	w := make([]float32, size*size)
	for i := range w {
		w[i] = float32(i%7) * 0.01
	}
	var nodes [][]byte
	prev := "X"
	for d := 0; d < depth; d++ {
		out := "h" + itoa(int64(d))
		if d == depth-1 {
			out = "Y"
		}
		nodes = append(nodes, node("MatMul", "mm"+itoa(int64(d)), []string{prev, "W"}, []string{out}))
		prev = out
	}
	return model(graphSpec{
		nodes:   nodes,
		inits:   [][]byte{initializer("W", tFloat, []int64{int64(size), int64(size)}, f32Bytes(w))},
		inputs:  [][]byte{valueInfo("X", tFloat, size, size)},
		outputs: [][]byte{valueInfo("Y", tFloat, size, size)},
	})
}

// halfToFloat64 decodes IEEE binary16 exactly.
func halfToFloat64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10&31), float64(h&1023)
	switch e {
	case 0:
		return sign * math.Ldexp(m, -24)
	case 31:
		if m != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1024+m, e-25)
}

// floatToHalfRef rounds x to binary16 by searching the nearest of all
// finite halves (ties to the even bit pattern), with 65536 standing in for
// infinity: an independent reference for ONNX Runtime's Cast.
func floatToHalfRef(x float32) uint16 {
	v := float64(x)
	var sign uint16
	if math.Signbit(v) {
		sign, v = 0x8000, -v
	}
	best, bestD := uint16(0), math.Inf(1)
	for h := uint16(0); h <= 0x7C00; h++ {
		hv := halfToFloat64(h)
		if h == 0x7C00 {
			hv = 65536
		}
		d := math.Abs(hv - v)
		if d < bestD || (d == bestD && h&1 == 0) {
			best, bestD = h, d
		}
	}
	return sign | best
}
