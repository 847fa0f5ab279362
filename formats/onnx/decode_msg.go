package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

const (
	varintT  = protowire.VarintType
	bytesT   = protowire.BytesType
	fixed32T = protowire.Fixed32Type
	fixed64T = protowire.Fixed64Type
)

func (d *decoder) model(m *Model, start, end int) error {
	return d.fields(start, end, func(f field) error {
		switch {
		case f.is(fModelIRVersion, varintT):
			d.setInt64(&m.extra, f, &m.IRVersion)
		case f.is(fModelProducerName, bytesT):
			d.setString(&m.extra, f, &m.ProducerName)
		case f.is(fModelProducerVersion, bytesT):
			d.setString(&m.extra, f, &m.ProducerVersion)
		case f.is(fModelDomain, bytesT):
			d.setString(&m.extra, f, &m.Domain)
		case f.is(fModelModelVersion, varintT):
			d.setInt64(&m.extra, f, &m.ModelVersion)
		case f.is(fModelDocString, bytesT):
			d.setString(&m.extra, f, &m.DocString)
		case f.is(fModelGraph, bytesT):
			if m.Graph != nil {
				return d.errorf(f.at, "graph", ErrMalformed, "singular field appears twice")
			}
			g := &Graph{}
			if err := d.sub(f, "graph", -1, func(s, e int) error { return d.graph(g, s, e) }); err != nil {
				return err
			}
			m.Graph = g
		case f.is(fModelOpsetImport, bytesT):
			o := &OpsetID{}
			if err := d.sub(f, "opset_import", len(m.Opsets), func(s, e int) error { return d.opset(o, s, e) }); err != nil {
				return err
			}
			m.Opsets = append(m.Opsets, o)
		case f.is(fModelMetadataProps, bytesT):
			p, err := d.entry(f, "metadata_props", len(m.Metadata))
			if err != nil {
				return err
			}
			m.Metadata = append(m.Metadata, p)
		default:
			m.addUnknown(d.raw(f))
		}
		return nil
	})
}

func (d *decoder) opset(o *OpsetID, start, end int) error {
	return d.fields(start, end, func(f field) error {
		switch {
		case f.is(fOpsetDomain, bytesT):
			d.setString(&o.extra, f, &o.Domain)
		case f.is(fOpsetVersion, varintT):
			d.setInt64(&o.extra, f, &o.Version)
		default:
			o.addUnknown(d.raw(f))
		}
		return nil
	})
}

func (d *decoder) entry(f field, name string, index int) (*StringString, error) {
	p := &StringString{}
	err := d.sub(f, name, index, func(start, end int) error {
		return d.fields(start, end, func(f field) error {
			switch {
			case f.is(fEntryKey, bytesT):
				d.setString(&p.extra, f, &p.Key)
			case f.is(fEntryValue, bytesT):
				d.setString(&p.extra, f, &p.Value)
			default:
				p.addUnknown(d.raw(f))
			}
			return nil
		})
	})
	return p, err
}

func (d *decoder) graph(g *Graph, start, end int) error {
	return d.fields(start, end, func(f field) error {
		switch {
		case f.is(fGraphNode, bytesT):
			n := &Node{}
			if err := d.sub(f, "node", len(g.Nodes), func(s, e int) error { return d.node(n, s, e) }); err != nil {
				return err
			}
			g.Nodes = append(g.Nodes, n)
		case f.is(fGraphName, bytesT):
			d.setString(&g.extra, f, &g.Name)
		case f.is(fGraphInitializer, bytesT):
			t, err := d.tensorField(f, "initializer", len(g.Initializers))
			if err != nil {
				return err
			}
			g.Initializers = append(g.Initializers, t)
		case f.is(fGraphDocString, bytesT):
			d.setString(&g.extra, f, &g.DocString)
		case f.is(fGraphInput, bytesT):
			v, err := d.valueInfoField(f, "input", len(g.Inputs))
			if err != nil {
				return err
			}
			g.Inputs = append(g.Inputs, v)
		case f.is(fGraphOutput, bytesT):
			v, err := d.valueInfoField(f, "output", len(g.Outputs))
			if err != nil {
				return err
			}
			g.Outputs = append(g.Outputs, v)
		case f.is(fGraphValueInfo, bytesT):
			v, err := d.valueInfoField(f, "value_info", len(g.ValueInfo))
			if err != nil {
				return err
			}
			g.ValueInfo = append(g.ValueInfo, v)
		default:
			g.addUnknown(d.raw(f))
		}
		return nil
	})
}

func (d *decoder) node(n *Node, start, end int) error {
	return d.fields(start, end, func(f field) error {
		switch {
		case f.is(fNodeInput, bytesT):
			n.Inputs = append(n.Inputs, d.str(f))
		case f.is(fNodeOutput, bytesT):
			n.Outputs = append(n.Outputs, d.str(f))
		case f.is(fNodeName, bytesT):
			d.setString(&n.extra, f, &n.Name)
		case f.is(fNodeOpType, bytesT):
			d.setString(&n.extra, f, &n.OpType)
		case f.is(fNodeAttribute, bytesT):
			a := &Attribute{}
			if err := d.sub(f, "attribute", len(n.Attrs), func(s, e int) error { return d.attribute(a, s, e) }); err != nil {
				return err
			}
			n.Attrs = append(n.Attrs, a)
		case f.is(fNodeDocString, bytesT):
			d.setString(&n.extra, f, &n.DocString)
		case f.is(fNodeDomain, bytesT):
			d.setString(&n.extra, f, &n.Domain)
		default:
			n.addUnknown(d.raw(f))
		}
		return nil
	})
}

// attrValueField is the AttributeProto field that carries a value of type t,
// which the writer always emits (0 for list and unmodelled types).
func attrValueField(t AttrType) protowire.Number {
	switch t {
	case AttrTypeFloat:
		return fAttrF
	case AttrTypeInt:
		return fAttrI
	case AttrTypeString:
		return fAttrS
	}
	return 0
}

func (d *decoder) attribute(a *Attribute, start, end int) error {
	err := d.fields(start, end, func(f field) error {
		var err error
		switch {
		case f.is(fAttrName, bytesT):
			d.setString(&a.extra, f, &a.Name)
		case f.is(fAttrF, fixed32T):
			a.F = scalar[float32](d.buf[f.val:f.end], fixed32T)
			a.setZero(f.num, math.Float32bits(a.F) == 0)
		case f.is(fAttrI, varintT):
			d.setInt64(&a.extra, f, &a.I)
		case f.is(fAttrS, bytesT):
			a.S = d.bytes(f)
		case f.is(fAttrT, bytesT):
			if a.T != nil {
				return d.errorf(f.at, "t", ErrMalformed, "singular field appears twice")
			}
			a.T, err = d.tensorField(f, "t", -1)
		case f.is(fAttrG, bytesT):
			if a.G != nil {
				return d.errorf(f.at, "g", ErrMalformed, "singular field appears twice")
			}
			g := &Graph{}
			if err = d.sub(f, "g", -1, func(s, e int) error { return d.graph(g, s, e) }); err == nil {
				a.G = g
			}
		case f.scalarOrPacked(fAttrFloats, fixed32T):
			a.Floats, err = appendScalars(d, &a.extra, kindAttribute, f, a.Floats, "floats")
		case f.scalarOrPacked(fAttrInts, varintT):
			a.Ints, err = appendScalars(d, &a.extra, kindAttribute, f, a.Ints, "ints")
		case f.is(fAttrStrings, bytesT):
			a.Strings = append(a.Strings, d.bytes(f))
		case f.is(fAttrTensors, bytesT):
			var t *Tensor
			if t, err = d.tensorField(f, "tensors", len(a.Tensors)); err == nil {
				a.Tensors = append(a.Tensors, t)
			}
		case f.is(fAttrGraphs, bytesT):
			g := &Graph{}
			if err = d.sub(f, "graphs", len(a.Graphs), func(s, e int) error { return d.graph(g, s, e) }); err == nil {
				a.Graphs = append(a.Graphs, g)
			}
		case f.is(fAttrDocString, bytesT):
			d.setString(&a.extra, f, &a.DocString)
		case f.is(fAttrType, varintT):
			a.Type = AttrType(int32(d.uvarint(f)))
			a.setZero(f.num, a.Type == 0)
		case f.is(fAttrRefAttrName, bytesT):
			d.setString(&a.extra, f, &a.RefAttrName)
		default:
			a.addUnknown(d.raw(f))
		}
		return err
	})
	// The writer always emits the field that Type names, so its presence
	// needs no record.
	if n := attrValueField(a.Type); n != 0 {
		a.setZero(n, false)
	}
	if a.Type == AttrTypeString && a.S == nil {
		a.S = []byte{} // as it reads back after the writer emits s
	}
	return err
}

func (d *decoder) valueInfoField(f field, name string, index int) (*ValueInfo, error) {
	v := &ValueInfo{}
	err := d.sub(f, name, index, func(start, end int) error {
		return d.fields(start, end, func(f field) error {
			switch {
			case f.is(fValueInfoName, bytesT):
				d.setString(&v.extra, f, &v.Name)
			case f.is(fValueInfoType, bytesT):
				if v.hasType() {
					return d.errorf(f.at, "type", ErrMalformed, "singular field appears twice")
				}
				if err := d.sub(f, "type", -1, func(s, e int) error { return d.typeProto(v, s, e) }); err != nil {
					return err
				}
				v.setZero(f.num, !v.hasType())
			case f.is(fValueInfoDocString, bytesT):
				d.setString(&v.extra, f, &v.DocString)
			default:
				v.addUnknown(d.raw(f))
			}
			return nil
		})
	})
	return v, err
}

func (d *decoder) typeProto(v *ValueInfo, start, end int) error {
	return d.fields(start, end, func(f field) error {
		if !f.is(fTypeTensorType, bytesT) {
			v.typ.addUnknown(d.raw(f))
			return nil
		}
		if v.hasTensorType() {
			return d.errorf(f.at, "tensor_type", ErrMalformed, "singular field appears twice")
		}
		err := d.sub(f, "tensor_type", -1, func(start, end int) error {
			return d.fields(start, end, func(f field) error {
				switch {
				case f.is(fTensorTypeElemType, varintT):
					v.ElemType = DataType(int32(d.uvarint(f)))
					v.tensorType.setZero(f.num, v.ElemType == 0)
				case f.is(fTensorTypeShape, bytesT):
					if v.Shape != nil {
						return d.errorf(f.at, "shape", ErrMalformed, "singular field appears twice")
					}
					return d.sub(f, "shape", -1, func(s, e int) error { return d.shape(v, s, e) })
				default:
					v.tensorType.addUnknown(d.raw(f))
				}
				return nil
			})
		})
		v.typ.setZero(fTypeTensorType, !v.hasTensorType())
		return err
	})
}

func (d *decoder) shape(v *ValueInfo, start, end int) error {
	v.Shape = []Dim{}
	return d.fields(start, end, func(f field) error {
		if !f.is(fShapeDim, bytesT) {
			v.shape.addUnknown(d.raw(f))
			return nil
		}
		if len(v.Shape) >= MaxRank {
			return d.errorf(f.at, "dim", ErrBadTensor, "more than %d dims", MaxRank)
		}
		var dim Dim
		err := d.sub(f, "dim", len(v.Shape), func(start, end int) error {
			return d.fields(start, end, func(f field) error {
				switch {
				case f.is(fDimValue, varintT):
					dim.Value, dim.Param = int64(d.uvarint(f)), ""
					dim.setZero(fDimParam, false)
					dim.setZero(fDimValue, dim.Value == 0)
				case f.is(fDimParam, bytesT):
					dim.Param, dim.Value = d.str(f), 0
					dim.setZero(fDimValue, false)
					dim.setZero(fDimParam, dim.Param == "")
				case f.is(fDimDenotation, bytesT):
					d.setString(&dim.extra, f, &dim.Denotation)
				default:
					dim.addUnknown(d.raw(f))
				}
				return nil
			})
		})
		v.Shape = append(v.Shape, dim)
		return err
	})
}

// hasTensorType reports whether the writer will emit TypeProto.tensor_type.
func (v *ValueInfo) hasTensorType() bool {
	return v.ElemType != 0 || v.Shape != nil || !v.tensorType.empty() || v.typ.zero(fTypeTensorType)
}

// hasType reports whether the writer will emit ValueInfoProto.type.
func (v *ValueInfo) hasType() bool {
	return v.hasTensorType() || !v.typ.empty() || v.zero(fValueInfoType)
}
