package quant

import (
	"errors"
	"math"
	"strconv"
	"testing"
)

// publishedDynamic are entries of the signed map as bitsandbytes stores it in
// nested_quant_map (torch-generated table, as printed by Python), including
// the ones where an uncontracted linspace would differ (18, 20, 23, 25, 39,
// 72, 102, 116, 117).
var publishedDynamic = map[int]string{
	0: "-0.992968738079071", 1: "-0.9789062738418579", 2: "-0.96484375",
	18: "-0.7398437261581421", 20: "-0.7117187976837158", 23: "-0.6695312261581421",
	25: "-0.6414062976837158", 39: "-0.44453126192092896", 63: "-0.10703125596046448",
	64: "-0.09859374910593033", 72: "-0.07609374821186066", 102: "-0.006343749817460775",
	116: "-0.000493750034365803", 117: "-0.0003812500217463821", 120: "-8.874999912222847e-05",
	126: "-5.500000384017767e-07", 127: "0.0", 128: "5.500000384017767e-07",
	254: "0.992968738079071", 255: "1.0",
}

func TestDynamicMapPinned(t *testing.T) {
	c := DynamicMap(true)
	for i, s := range publishedDynamic {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		if float64(c[i]) != v {
			t.Errorf("DynamicMap(true)[%d] = %v, want %s", i, c[i], s)
		}
	}
	for i := 0; i < 127; i++ {
		if c[254-i] != -c[i] {
			t.Errorf("signed map not symmetric at %d: %v vs %v", i, c[i], c[254-i])
		}
	}
	for _, m := range [][256]float32{c, DynamicMap(false)} {
		for i := 1; i < 256; i++ {
			if !(m[i-1] < m[i]) {
				t.Fatalf("map not strictly increasing at %d: %v, %v", i, m[i-1], m[i])
			}
		}
		if m[255] != 1 {
			t.Errorf("map[255] = %v, want 1", m[255])
		}
	}
	u := DynamicMap(false)
	// unsigned: 0, then 2·(1+2+…+64) = 254 positive means, then 1
	if u[0] != 0 || !(u[1] > 0) {
		t.Errorf("unsigned map starts %v %v", u[0], u[1])
	}
	// smallest unsigned entry: 1e-6 times the mean of linspace(0.1, 1, 3)[0:2]
	lin := torchLinspace(0.1, 1, 3)
	if want := float32(1e-6) * ((lin[0] + lin[1]) / 2); u[1] != want || lin[1] != 0.55 {
		t.Errorf("unsigned map[1] = %v, want %v (linspace %v)", u[1], want, lin)
	}
}

// dynProbes are values where dQuantize must decide carefully: every entry,
// every float32 midpoint and the floats around both.
func dynProbes() []float32 {
	c := DynamicMap(true)
	var xs []float32
	for j := 0; j < 256; j++ {
		xs = append(xs, c[j], nextUp(c[j]), nextDown(c[j]))
		if j < 255 {
			m := (c[j] + c[j+1]) * 0.5
			xs = append(xs, m, nextUp(m), nextDown(m))
		}
	}
	// every table bucket's first and last value, and their neighbours
	for e := uint32(dynMinExp - 1); e <= 127; e++ {
		for f := uint32(0); f < 1<<dynFracBits; f++ {
			lo := e<<23 | f<<(23-dynFracBits)
			hi := lo | (1<<(23-dynFracBits) - 1)
			for _, b := range []uint32{lo, hi, lo - 1, hi + 1} {
				v := math.Float32frombits(b)
				xs = append(xs, v, -v)
			}
		}
	}
	r := newRand(8)
	for i := 0; i < 20000; i++ {
		xs = append(xs, float32(r.Float64()*2-1))
	}
	return append(xs, -1, 1, nextUp(1), nextDown(-1), 0, float32(math.Copysign(0, -1)), float32(math.NaN()),
		2, -2, float32(math.Inf(1)), float32(math.Inf(-1)))
}

func TestDynQuantize(t *testing.T) {
	c := DynamicMap(true)
	for _, x := range dynProbes() {
		got, port := dynQuantize(x), bnbDQuantize(&c, x)
		if got != port {
			t.Fatalf("dynQuantize(%v) = %d, transliterated kernel %d", x, got, port)
		}
		if x == x && math.Abs(float64(x)) <= 1 {
			if want := refDynCode(&c, float64(x)); got != want {
				t.Fatalf("dynQuantize(%v) = %d, reference %d", x, got, want)
			}
		}
	}
	// ties go to the even index
	for j := 0; j < 255; j++ {
		m := (c[j] + c[j+1]) * 0.5
		want := uint8(j)
		if j%2 == 1 {
			want = uint8(j + 1)
		}
		if m != c[j] && m != c[j+1] && dynQuantize(m) != want {
			t.Errorf("midpoint %d/%d: code %d, want %d", j, j+1, dynQuantize(m), want)
		}
	}
}

func checkDoubleQuant(t *testing.T, name string, absmax []float32, nb int) {
	t.Helper()
	nn := (len(absmax) + nb - 1) / nb
	codes, nested := make([]uint8, len(absmax)), make([]float32, nn)
	offset, err := DoubleQuant(codes, nested, absmax, nb)
	wc, wn, wo := refDoubleQuant(absmax, nb)
	c := DynamicMap(true)
	overflow := false
	for i, code := range wc {
		overflow = overflow || math.IsInf(float64(float32(c[code]*wn[i/nb])+wo), 0)
	}
	if overflow {
		if !errors.Is(err, ErrRange) {
			t.Fatalf("%s nb=%d: restored scales overflow, err = %v, want ErrRange", name, nb, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if math.Float32bits(offset) != math.Float32bits(wo) {
		t.Fatalf("%s: offset %v, want %v", name, offset, wo)
	}
	for i := range nested {
		if math.Float32bits(nested[i]) != math.Float32bits(wn[i]) {
			t.Fatalf("%s: nested[%d] = %v, want %v", name, i, nested[i], wn[i])
		}
	}
	for i := range codes {
		if codes[i] != wc[i] {
			t.Fatalf("%s nb=%d: code[%d] (absmax %v) = %d, want %d", name, nb, i, absmax[i], codes[i], wc[i])
		}
	}
	back := make([]float32, len(absmax))
	if err := UndoDoubleQuant(back, codes, nested, offset, nb); err != nil {
		t.Fatal(err)
	}
	// Bound: half the widest gap of the map (0.0140625 between neighbours
	// near ±1, so 0.00703) times nested, plus the float32 roundings of
	// absmax-offset, v/nested, code·nested and + offset: 2^-20 of
	// (nested + offset) covers them.
	halfGap := 0.0
	for j := 0; j < 255; j++ {
		halfGap = math.Max(halfGap, float64(c[j+1]-c[j])/2)
	}
	halfGap = math.Max(halfGap, float64(c[0]+1)) // -1 maps to c[0]
	for i, a := range absmax {
		nm := float64(nested[i/nb])
		// (+2^-148: float32 results among subnormals round in absolute
		// steps of up to 2^-150, four such roundings.)
		bound := nm*halfGap + (nm+math.Abs(float64(offset)))*0x1p-20 + 0x1p-148
		if d := math.Abs(float64(a) - float64(back[i])); d > bound {
			t.Fatalf("%s [%d]: |absmax-absmax'| = %g > %g", name, i, d, bound)
		}
		if want := float32(c[codes[i]]*nested[i/nb]) + offset; back[i] != want {
			t.Fatalf("%s: UndoDoubleQuant[%d] = %v, want %v", name, i, back[i], want)
		}
	}
}

func TestDoubleQuant(t *testing.T) {
	r := newRand(9)
	nf4Absmax := func(n int, sigma float64) []float32 {
		src := normals(r, n*64, sigma)
		np, na := NF4Sizes(len(src), 64)
		am := make([]float32, na)
		if err := QuantizeNF4(make([]byte, np), am, src, 64); err != nil {
			t.Fatal(err)
		}
		return am
	}
	equal := make([]float32, 300)
	for i := range equal {
		equal[i] = 0.125
	}
	near := make([]float32, 512)
	for i := range near {
		near[i] = 1 + float32(i%3)*0x1p-23 // differences of an ulp: nested is tiny
	}
	tiny := make([]float32, 256)
	for i := range tiny {
		tiny[i] = math.Float32frombits(uint32(i % 7)) // subnormal absmax values
	}
	cases := map[string][]float32{
		"nf4":      nf4Absmax(3000, 0.02),
		"nf4-wide": nf4Absmax(700, 5),
		"equal":    equal,
		"one":      {0.5},
		"near":     near,
		"tiny":     tiny,
		"huge":     {3e38, 1e38, 0, 2e38, 3.4e38},
		"ramp": func() []float32 {
			v := make([]float32, 600)
			for i := range v {
				v[i] = float32(i) / 600
			}
			return v
		}(),
	}
	for name, am := range cases {
		for _, nb := range []int{256, 64, 1, 7} {
			checkDoubleQuant(t, name, am, nb)
		}
	}
	if off, err := DoubleQuant(nil, nil, nil, 256); err != nil || off != 0 {
		t.Errorf("empty: %v %v", off, err)
	}
}

func TestDoubleQuantErrors(t *testing.T) {
	am := []float32{1, 2, float32(math.Inf(1)), 3}
	_, err := DoubleQuant(make([]uint8, 4), make([]float32, 1), am, 256)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Index != 2 {
		t.Errorf("Inf: %v", err)
	}
	for _, nb := range []int{0, -1, MaxNestedBlockSize + 1} {
		if _, err := DoubleQuant(make([]uint8, 4), make([]float32, 1), am, nb); !errors.Is(err, ErrBlockSize) {
			t.Errorf("block %d: %v", nb, err)
		}
		if err := UndoDoubleQuant(make([]float32, 4), make([]uint8, 4), make([]float32, 1), 0, nb); !errors.Is(err, ErrBlockSize) {
			t.Errorf("undo block %d: %v", nb, err)
		}
	}
	if _, err := DoubleQuant(make([]uint8, 2), make([]float32, 1), []float32{math.MaxFloat32, 1e38}, 256); !errors.Is(err, ErrRange) {
		t.Errorf("restored scale overflows: %v, want ErrRange", err)
	}
	if _, err := DoubleQuant(make([]uint8, 3), make([]float32, 1), []float32{1, 2, 3, 4}, 256); !errors.Is(err, ErrLength) {
		t.Errorf("codes length: %v", err)
	}
	if _, err := DoubleQuant(make([]uint8, 4), make([]float32, 2), []float32{1, 2, 3, 4}, 256); !errors.Is(err, ErrLength) {
		t.Errorf("nested length: %v", err)
	}
	if err := UndoDoubleQuant(make([]float32, 4), make([]uint8, 4), make([]float32, 2), 0, 256); !errors.Is(err, ErrLength) {
		t.Errorf("undo nested length: %v", err)
	}
}
