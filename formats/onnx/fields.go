package onnx

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers, checked against onnx/onnx.proto (IR version 10). Fields of
// these messages that are not listed are carried as unknown fields.
const (
	// ModelProto. Not modelled: training_info 20, functions 25,
	// configuration 26.
	fModelIRVersion       protowire.Number = 1
	fModelProducerName    protowire.Number = 2
	fModelProducerVersion protowire.Number = 3
	fModelDomain          protowire.Number = 4
	fModelModelVersion    protowire.Number = 5
	fModelDocString       protowire.Number = 6
	fModelGraph           protowire.Number = 7
	fModelOpsetImport     protowire.Number = 8
	fModelMetadataProps   protowire.Number = 14

	// GraphProto. Not modelled: quantization_annotation 14,
	// sparse_initializer 15, metadata_props 16.
	fGraphNode        protowire.Number = 1
	fGraphName        protowire.Number = 2
	fGraphInitializer protowire.Number = 5
	fGraphDocString   protowire.Number = 10
	fGraphInput       protowire.Number = 11
	fGraphOutput      protowire.Number = 12
	fGraphValueInfo   protowire.Number = 13

	// NodeProto. Not modelled: overload 8, metadata_props 9,
	// device_configurations 10.
	fNodeInput     protowire.Number = 1
	fNodeOutput    protowire.Number = 2
	fNodeName      protowire.Number = 3
	fNodeOpType    protowire.Number = 4
	fNodeAttribute protowire.Number = 5
	fNodeDocString protowire.Number = 6
	fNodeDomain    protowire.Number = 7

	// AttributeProto. Not modelled: tp 14, type_protos 15, sparse_tensor 22,
	// sparse_tensors 23.
	fAttrName        protowire.Number = 1
	fAttrF           protowire.Number = 2
	fAttrI           protowire.Number = 3
	fAttrS           protowire.Number = 4
	fAttrT           protowire.Number = 5
	fAttrG           protowire.Number = 6
	fAttrFloats      protowire.Number = 7
	fAttrInts        protowire.Number = 8
	fAttrStrings     protowire.Number = 9
	fAttrTensors     protowire.Number = 10
	fAttrGraphs      protowire.Number = 11
	fAttrDocString   protowire.Number = 13
	fAttrType        protowire.Number = 20
	fAttrRefAttrName protowire.Number = 21

	// TensorProto. Not modelled: segment 3, metadata_props 16.
	fTensorDims         protowire.Number = 1
	fTensorDataType     protowire.Number = 2
	fTensorFloatData    protowire.Number = 4
	fTensorInt32Data    protowire.Number = 5
	fTensorStringData   protowire.Number = 6
	fTensorInt64Data    protowire.Number = 7
	fTensorName         protowire.Number = 8
	fTensorRawData      protowire.Number = 9
	fTensorDoubleData   protowire.Number = 10
	fTensorUint64Data   protowire.Number = 11
	fTensorDocString    protowire.Number = 12
	fTensorExternalData protowire.Number = 13
	fTensorDataLocation protowire.Number = 14

	// ValueInfoProto. Not modelled: metadata_props 4.
	fValueInfoName      protowire.Number = 1
	fValueInfoType      protowire.Number = 2
	fValueInfoDocString protowire.Number = 3

	// TypeProto: only tensor_type; sequence_type 4, map_type 5, denotation
	// 6, sparse_tensor_type 8 and optional_type 9 are carried unknown.
	fTypeTensorType protowire.Number = 1
	// TypeProto.Tensor.
	fTensorTypeElemType protowire.Number = 1
	fTensorTypeShape    protowire.Number = 2
	// TensorShapeProto.
	fShapeDim protowire.Number = 1
	// TensorShapeProto.Dimension (dim_value and dim_param are a oneof).
	fDimValue      protowire.Number = 1
	fDimParam      protowire.Number = 2
	fDimDenotation protowire.Number = 3

	// OperatorSetIdProto.
	fOpsetDomain  protowire.Number = 1
	fOpsetVersion protowire.Number = 2

	// StringStringEntryProto.
	fEntryKey   protowire.Number = 1
	fEntryValue protowire.Number = 2
)

// dataLocationExternal is TensorProto.DataLocation EXTERNAL.
const dataLocationExternal = 1

// Repeated scalar fields are written packed or not as onnx.proto (proto2)
// declares: TensorProto dims and AttributeProto floats/ints are unpacked,
// the TensorProto *_data fields are [packed = true]. The reader accepts both
// forms and remembers a field that came the other way (extra.flipped).
func defaultPacked(msg msgKind, num protowire.Number) bool {
	return msg == kindTensor && num != fTensorDims
}

// msgKind names the messages that have repeated scalar fields.
type msgKind int

const (
	kindTensor msgKind = iota
	kindAttribute
)
