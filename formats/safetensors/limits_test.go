package safetensors

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/quantpack/quantpack/internal/fault"
)

// manyTensors is a valid file of n empty F32 tensors, the shape of the
// issue's 1.4 M-tensor header.
func manyTensors(n int) []byte {
	var h bytes.Buffer
	h.WriteByte('{')
	for i := 0; i < n; i++ {
		if i > 0 {
			h.WriteByte(',')
		}
		fmt.Fprintf(&h, `"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`, i)
	}
	h.WriteByte('}')
	return file(h.String(), nil)
}

// Issue 17 case 11: a header of more than MaxTensors entries is refused as
// unsupported, naming the limit, and the parse stops there: memory is
// bounded by the limit, not by the 100 MB a header may take.
func TestTooManyTensors(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: parses 100 000 entries")
	}
	data := manyTensors(MaxTensors + 1000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewFile(bytes.NewReader(data), int64(len(data)), "many")
	runtime.ReadMemStats(&after)
	var fe *FormatError
	if !errors.Is(err, ErrTooManyTensors) || fault.ClassOf(err) != fault.Unsupported || !errors.As(err, &fe) || fe.Tensor != fmt.Sprintf("t%d", MaxTensors) {
		t.Fatalf("err = %v, want ErrTooManyTensors at tensor t%d", err, MaxTensors)
	}
	// Allocation stops with the limit: at most 2 kB per entry parsed (1.7 kB
	// measured), never in proportion to the rest of the header.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(MaxTensors)*2048 {
		t.Errorf("allocated %d bytes to refuse %d entries", grew, MaxTensors)
	}
	// Exactly MaxTensors is accepted.
	data = manyTensors(MaxTensors)
	if _, err := NewFile(bytes.NewReader(data), int64(len(data)), "max"); err != nil {
		t.Errorf("%d tensors: %v", MaxTensors, err)
	}
}
