package quantize

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"codeberg.org/sbinet/npyio"

	"github.com/quantpack/quantpack/verify"
)

// maxNpyHeader caps a .npy header's length before the header is read:
// numpy pads headers to 64 bytes and writes a few hundred at most; a
// length field past this is a corrupt or hostile file, refused before
// anything of that size is allocated (npyio would allocate it).
const maxNpyHeader = 1 << 16

// npyArray is one opened .npy file positioned at its first value.
type npyArray struct {
	name, path string
	f          *os.File
	r          *bufio.Reader
	shape      []int
	per        int // float32 values per sample
	sum        string
}

// NpyError names a .npy file that cannot be read, and where.
type NpyError struct {
	Path   string
	Offset int64
	Msg    string
}

func (e *NpyError) Error() string {
	return fmt.Sprintf("%s: at byte %d: %s", e.Path, e.Offset, e.Msg)
}

func (e *NpyError) Unwrap() error { return ErrBadNpy }

// openNpy reads a .npy header with npyio (after checking the prelude that
// npyio trusts) and leaves the reader at the data.
func openNpy(name, path string) (a *npyArray, err error) {
	sum, err := fileSHA256(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, maxNpyHeader+16)
	pre, _ := br.Peek(12)
	if len(pre) < 10 || string(pre[:6]) != "\x93NUMPY" {
		return nil, &NpyError{path, 0, "not a .npy file (no \\x93NUMPY magic)"}
	}
	var hlen, start int
	switch pre[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(pre[8:])), 10
	case 2, 3:
		if len(pre) < 12 {
			return nil, &NpyError{path, 8, "truncated header length"}
		}
		l := binary.LittleEndian.Uint32(pre[8:])
		if l > maxNpyHeader {
			return nil, &NpyError{path, 8, fmt.Sprintf("header length %d over %d", l, maxNpyHeader)}
		}
		hlen, start = int(l), 12
	default:
		return nil, &NpyError{path, 6, fmt.Sprintf("format version %d", pre[6])}
	}
	hdr, _ := br.Peek(start + hlen)
	if len(hdr) < start+hlen || !strings.Contains(string(hdr[start:]), "\n") {
		return nil, &NpyError{path, int64(start), "truncated header or header without a newline"}
	}
	r, err := newNpyReader(br)
	if err != nil {
		return nil, &NpyError{path, int64(start), err.Error()}
	}
	d := r.Header.Descr
	if typ := strings.Trim(d.Type, `'" `); typ != "<f4" || d.Fortran {
		return nil, fmt.Errorf("%w: %s (input %q): array is %s%s; want float32 (<f4) in C order",
			ErrCalibData, path, name, typ, map[bool]string{true: " in Fortran order"}[d.Fortran])
	}
	if len(d.Shape) < 1 || d.Shape[0] < 1 {
		return nil, fmt.Errorf("%w: %s (input %q): shape %v has no samples; want [N, …]", ErrCalibData, path, name, d.Shape)
	}
	per := int64(1)
	for _, x := range d.Shape[1:] {
		if x < 0 || per > 0 && int64(x) > math.MaxInt32/per {
			return nil, &NpyError{path, int64(start), fmt.Sprintf("shape %v too large", d.Shape)}
		}
		per *= int64(x)
	}
	need := int64(start+hlen) + 4*per*int64(d.Shape[0])
	if per > 0 && int64(d.Shape[0]) > math.MaxInt64/(4*per) || need > st.Size() {
		return nil, &NpyError{path, st.Size(), fmt.Sprintf("truncated: shape %v needs %d bytes, the file has %d", d.Shape, need, st.Size())}
	}
	return &npyArray{name: name, path: path, f: f, r: br, shape: d.Shape, per: int(per), sum: sum}, nil
}

// newNpyReader runs npyio's header parser, turning a panic on a malformed
// header into an error.
func newNpyReader(r io.Reader) (nr *npyio.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			nr, err = nil, fmt.Errorf("malformed header (%v)", p)
		}
	}()
	return npyio.NewReader(r)
}

// npySource streams samples from one .npy file per model input.
type npySource struct {
	arrays []*npyArray
	infos  []verify.IOInfo
	n, pos int
	batch  int
	spec   string
}

// NewNpySource opens the .npy files of specs (FILE for a model with one
// input, NAME=FILE per input otherwise) and checks each against the
// model's inputs: float32, [N, …] with the model's dimensions after the
// batch (dynamic ones match any size), the same N in every file. At most
// n samples are used (0: all).
func NewNpySource(specs []string, inputs []verify.IOInfo, n, batch int) (src Source, err error) {
	s := &npySource{batch: batch, spec: strings.Join(specs, ",")}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	fixed := false
	byName := map[string]verify.IOInfo{}
	for _, in := range inputs {
		byName[in.Name] = in
	}
	for _, spec := range specs {
		name, file, ok := strings.Cut(spec, "=")
		if !ok {
			if len(specs) != 1 || len(inputs) != 1 {
				return nil, fmt.Errorf("%w: --calib-data %q: the model has %d inputs; give NAME=FILE.npy for each", ErrCalibData, spec, len(inputs))
			}
			name, file = inputs[0].Name, spec
		}
		info, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("%w: --calib-data names input %q; the model's inputs are %v", ErrCalibData, name, ioNames(inputs))
		}
		a, err := openNpy(name, file)
		if err != nil {
			return nil, err
		}
		s.arrays = append(s.arrays, a)
		s.infos = append(s.infos, info)
		if info.DType != verify.Float32 {
			return nil, fmt.Errorf("%w: input %q is %s; --calib-data takes float32 inputs", ErrCalibData, name, info.DType)
		}
		if len(info.Shape) != len(a.shape) {
			return nil, fmt.Errorf("%w: input %q: expected shape %v, got %v in %s", ErrCalibData, name, info.Shape, a.shape, file)
		}
		for i := 1; i < len(a.shape); i++ {
			if !dimFits(info.Shape[i], int64(a.shape[i])) {
				return nil, fmt.Errorf("%w: input %q: expected shape %v, got %v in %s", ErrCalibData, name, info.Shape, a.shape, file)
			}
		}
		if info.Shape[0] > 0 {
			s.batch, fixed = int(info.Shape[0]), true // a fixed batch dimension
		}
		if len(s.arrays) > 1 && a.shape[0] != s.arrays[0].shape[0] {
			return nil, fmt.Errorf("%w: %s holds %d samples, %s %d", ErrCalibData, file, a.shape[0], s.arrays[0].path, s.arrays[0].shape[0])
		}
	}
	for _, in := range inputs {
		if !slices.ContainsFunc(s.arrays, func(a *npyArray) bool { return a.name == in.Name }) {
			return nil, fmt.Errorf("%w: no --calib-data for input %q", ErrCalibData, in.Name)
		}
	}
	s.n = s.arrays[0].shape[0]
	if n > 0 && n < s.n {
		s.n = n
	}
	if s.n < s.batch && !fixed {
		s.batch = s.n
	}
	if fixed { // whole batches only
		s.n -= s.n % s.batch
		if s.n == 0 {
			return nil, fmt.Errorf("%w: the model's batch dimension is %d; the data holds fewer samples", ErrCalibData, s.batch)
		}
	}
	return s, nil
}

func ioNames(in []verify.IOInfo) []string {
	var s []string
	for _, x := range in {
		s = append(s, x.Name)
	}
	return s
}

func (s *npySource) Next(ctx context.Context) ([]verify.Tensor, error) {
	if s.pos >= s.n {
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := min(s.batch, s.n-s.pos)
	var out []verify.Tensor
	buf := make([]byte, 0)
	for _, a := range s.arrays {
		vals := b * a.per
		buf = append(buf[:0], make([]byte, 4*vals)...)
		if _, err := io.ReadFull(a.r, buf); err != nil {
			return nil, &NpyError{a.path, -1, fmt.Sprintf("sample %d: %v", s.pos, err)}
		}
		v := make([]float32, vals)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		shape := []int64{int64(b)}
		for _, d := range a.shape[1:] {
			shape = append(shape, int64(d))
		}
		out = append(out, verify.Tensor{Name: a.name, DType: verify.Float32, Shape: shape, F32: v})
	}
	s.pos += b
	return out, nil
}

func (s *npySource) Info() SourceInfo {
	h := sha256.New()
	for _, a := range s.arrays {
		fmt.Fprintf(h, "%s  %s\n", a.sum, a.name)
	}
	return SourceInfo{Kind: "npy", Path: s.spec, SHA256: hex.EncodeToString(h.Sum(nil)), Count: s.pos}
}

func (s *npySource) Close() error {
	for _, a := range s.arrays {
		a.f.Close()
	}
	return nil
}
