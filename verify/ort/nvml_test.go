package ort

import "testing"

func TestDeviceUsage(t *testing.T) {
	const me, other = 42, 7
	na := nvmlValueNotAvailable
	for _, c := range []struct {
		name          string
		lists         [][]gpuProcess
		used          uint64
		listed, known bool
	}{
		{"no lists", nil, 0, false, false},
		{"other processes only", [][]gpuProcess{{{other, 100}}, {{other, 5}}}, 0, false, false},
		{"compute only", [][]gpuProcess{{{other, 100}, {me, 300}}, {}}, 300, true, true},
		// MIG: one entry per GPU instance, summed.
		{"two instances", [][]gpuProcess{{{me, 300}, {other, 1}, {me, 200}}}, 500, true, true},
		// The same context in the compute and the graphics list: counted once.
		{"compute and graphics", [][]gpuProcess{{{me, 300}}, {{me, 300}}, {}}, 300, true, true},
		{"graphics larger", [][]gpuProcess{{{me, 300}}, {{me, 400}}}, 400, true, true},
		{"not available", [][]gpuProcess{{{me, na}}}, 0, true, false},
		{"partly not available", [][]gpuProcess{{{me, na}, {me, 10}}}, 10, true, false},
	} {
		used, listed, known := deviceUsage(me, c.lists)
		if used != c.used || listed != c.listed || known != c.known {
			t.Errorf("%s: got %d %v %v, want %d %v %v", c.name, used, listed, known, c.used, c.listed, c.known)
		}
	}
}
