package convert

import (
	"fmt"
	"math"
	"testing"

	"github.com/quantpack/quantpack/formats/safetensors"
	"github.com/quantpack/quantpack/quant"
)

// A float64 forward pass of the ViT, DeiT, DINOv2 and BEiT families written
// from the transformers modeling code, independent of the graph builders: it
// reads the weights a source holds (a convert artifact's Linear weights
// dequantized with package quant, everything else decoded) and computes in
// float64, one image at a time. The quantized exports are checked against
// it: the same math on the same dequantized weights.

type refNet struct {
	t    testing.TB
	arch *Arch
	cfg  *Config
	w    map[string][]float64
	dims map[string][]int64
}

// loadRefNet reads every tensor of dir (a checkpoint or an artifact) as the
// float64 values a loader would reconstruct.
func loadRefNet(t testing.TB, dir string) *refNet {
	t.Helper()
	s, err := openExportSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := &refNet{t: t, arch: s.arch, cfg: s.cfg, w: map[string][]float64{}, dims: map[string][]int64{}}
	get := func(name string) safetensors.Entry {
		e, ok := s.ckpt.Lookup(name)
		if !ok {
			t.Fatalf("%s: no tensor %q", dir, name)
		}
		return e
	}
	f32 := func(name string) []float32 {
		v, err := readFloat32(get(name))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	raw := func(name string) []byte {
		b, err := readRaw(get(name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	add := func(name string, shape []int64, v []float32) {
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = float64(x)
		}
		n.w[name], n.dims[name] = d, shape
	}
	if s.artifact == nil {
		for _, e := range s.ckpt.Tensors() {
			if isFloat(e.DType) {
				add(e.Name, e.Shape, f32(e.Name))
			}
		}
		return n
	}
	for _, r := range s.artifact.Tensors {
		numel := 1
		for _, d := range r.Shape {
			numel *= int(d)
		}
		dst := make([]float32, numel)
		switch r.Scheme {
		case SchemeFP32, SchemeFP16, SchemeBF16:
			dst = f32(r.Name)
		case SchemeInt8:
			p := prefixOf(r.Name)
			q := raw(r.Name)
			i8 := make([]int8, len(q))
			for i, b := range q {
				i8[i] = int8(b)
			}
			err = quant.DequantizeInt8Rows(dst, i8, f32(p+".SCB"), int(r.Shape[0]), int(r.Shape[1]))
		case SchemeInt4:
			codes := get(r.Name)
			prm := quant.Int4Params{BlockSize: int(2 * codes.Shape[2]), Symmetric: true}
			var zeros []byte
			if _, ok := s.ckpt.Lookup(r.Name + "_zero_point"); ok {
				prm.Symmetric, zeros = false, raw(r.Name+"_zero_point")
			}
			err = quant.DequantizeInt4(dst, raw(r.Name), f32(r.Name+"_scale"), zeros, int(r.Shape[0]), int(r.Shape[1]), prm)
		case SchemeNF4:
			b := &builder{w: s.w}
			st, serr := b.nf4State(r.Name, r.Shape[0], r.Shape[1])
			if serr != nil {
				t.Fatal(serr)
			}
			absmax, aerr := b.nf4Absmax(r.Name, st, int64(numel))
			if aerr != nil {
				t.Fatal(aerr)
			}
			err = quant.DequantizeNF4(dst, raw(r.Name), absmax, st.BlockSize)
		default:
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		add(r.Name, r.Shape, dst)
	}
	return n
}

func (n *refNet) get(name string) []float64 {
	v, ok := n.w[name]
	if !ok {
		n.t.Fatalf("reference: no tensor %q", name)
	}
	return v
}

// linear: x [rows, in] · Wᵀ + b with W [out, in].
func (n *refNet) linear(x []float64, rows int, prefix string) []float64 {
	w := n.get(prefix + ".weight")
	d := n.dims[prefix+".weight"]
	out, in := int(d[0]), int(d[1])
	b := n.w[prefix+".bias"]
	y := make([]float64, rows*out)
	for r := 0; r < rows; r++ {
		xr := x[r*in : (r+1)*in]
		for o := 0; o < out; o++ {
			wr := w[o*in : (o+1)*in]
			var acc float64
			for i, v := range xr {
				acc += v * wr[i]
			}
			if b != nil {
				acc += b[o]
			}
			y[r*out+o] = acc
		}
	}
	return y
}

func (n *refNet) layerNorm(x []float64, rows int, prefix string, eps float64) []float64 {
	return layerNorm64(x, rows, n.get(prefix+".weight"), n.get(prefix+".bias"), eps)
}

// layerNorm64 normalises each of the rows of x [rows, len(g)] and applies
// the scale g and shift b: nn.LayerNorm in float64.
func layerNorm64(x []float64, rows int, g, b []float64, eps float64) []float64 {
	h := len(g)
	y := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		xr := x[r*h : (r+1)*h]
		var mean, v float64
		for _, a := range xr {
			mean += a
		}
		mean /= float64(h)
		for _, a := range xr {
			v += (a - mean) * (a - mean)
		}
		v /= float64(h)
		inv := 1 / math.Sqrt(v+eps)
		for i, a := range xr {
			y[r*h+i] = (a-mean)*inv*g[i] + b[i]
		}
	}
	return y
}

func refAct(x float64, act string) float64 {
	switch act {
	case "gelu":
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	case "quick_gelu":
		return x / (1 + math.Exp(-1.702*x))
	case "relu":
		return math.Max(x, 0)
	case "silu", "swish":
		return x / (1 + math.Exp(-x))
	}
	panic("refAct: " + act)
}

// attention: softmax(q·kᵀ/√d + bias)·v per head; q, k, v [S, H].
func refAttention(q, k, v []float64, s, heads, hidden int, bias []float64) []float64 {
	d := hidden / heads
	out := make([]float64, s*hidden)
	sc := make([]float64, s)
	for h := 0; h < heads; h++ {
		for i := 0; i < s; i++ {
			mx := math.Inf(-1)
			for j := 0; j < s; j++ {
				var dot float64
				for c := 0; c < d; c++ {
					dot += q[i*hidden+h*d+c] * k[j*hidden+h*d+c]
				}
				sc[j] = dot / math.Sqrt(float64(d))
				if bias != nil {
					sc[j] += bias[(h*s+i)*s+j]
				}
				mx = math.Max(mx, sc[j])
			}
			var sum float64
			for j := range sc {
				sc[j] = math.Exp(sc[j] - mx)
				sum += sc[j]
			}
			for c := 0; c < d; c++ {
				var acc float64
				for j := 0; j < s; j++ {
					acc += sc[j] / sum * v[j*hidden+h*d+c]
				}
				out[i*hidden+h*d+c] = acc
			}
		}
	}
	return out
}

// patchEmbed: Conv2d(kernel = stride = P) of one image [C, H, W] → [N, hidden].
func (n *refNet) patchEmbed(img []float64, prefix string, c, h, w, p, hidden int) []float64 {
	wt, b := n.get(prefix+".weight"), n.get(prefix+".bias")
	gh, gw := h/p, w/p
	out := make([]float64, gh*gw*hidden)
	for py := 0; py < gh; py++ {
		for px := 0; px < gw; px++ {
			for o := 0; o < hidden; o++ {
				acc := b[o]
				for ch := 0; ch < c; ch++ {
					for ky := 0; ky < p; ky++ {
						for kx := 0; kx < p; kx++ {
							acc += wt[((o*c+ch)*p+ky)*p+kx] * img[(ch*h+py*p+ky)*w+px*p+kx]
						}
					}
				}
				out[(py*gw+px)*hidden+o] = acc
			}
		}
	}
	return out
}

func addInto(x, y []float64) {
	for i := range x {
		x[i] += y[i]
	}
}

// scaleRows multiplies each row of x by the per-channel vector g.
func scaleRows(x, g []float64) []float64 {
	y := make([]float64, len(x))
	for i := range x {
		y[i] = x[i] * g[i%len(g)]
	}
	return y
}

// forward runs one image [C, H, W] and returns the named outputs.
func (n *refNet) forward(img []float64, h, w int) map[string][]float64 {
	p, err := readVitParams(n.cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	pre := n.arch.Prefix
	fam := n.arch.Family
	H := p.Hidden
	gh, gw := h/p.Patch, w/p.Patch
	x := n.patchEmbed(img, pre+"embeddings.patch_embeddings.projection", p.Channels, h, w, p.Patch, H)
	tokNames := []string{pre + "embeddings.cls_token"}
	if fam == "deit" {
		tokNames = append(tokNames, pre+"embeddings.distillation_token")
	}
	var toks []float64
	for _, tn := range tokNames {
		toks = append(toks, n.get(tn)...)
	}
	x = append(toks, x...)
	seq := len(tokNames) + gh*gw
	var beit beitParams
	var dino dinov2Params
	switch fam {
	case "beit":
		beit, _ = readBeitParams(n.cfg)
	case "dinov2":
		dino, _ = readDinov2Params(n.cfg)
	}
	if fam != "beit" || beit.AbsPos {
		pos := n.get(pre + "embeddings.position_embeddings")
		if len(pos) != seq*H {
			pos = n.resizedPos(pos, len(tokNames), H, gh, gw)
		}
		addInto(x, pos)
	}
	for i := 0; i < p.Layers; i++ {
		l := fmt.Sprintf("%sencoder.layer.%d", pre, i)
		ln1, ln2 := l+".layernorm_before", l+".layernorm_after"
		if fam == "dinov2" {
			ln1, ln2 = l+".norm1", l+".norm2"
		}
		a := n.layerNorm(x, seq, ln1, p.Eps)
		var bias []float64
		if fam == "beit" && beit.RelPos {
			bias = n.relBias(l+".attention.attention.relative_position_bias.relative_position_bias_table", gh, gw, p.Heads)
		}
		if fam == "beit" && beit.SharedRelPos {
			sh := n.relBias(pre+"encoder.relative_position_bias.relative_position_bias_table", gh, gw, p.Heads)
			if bias == nil {
				bias = sh
			} else {
				addInto(bias, sh)
			}
		}
		att := l + ".attention.attention"
		ctx := refAttention(n.linear(a, seq, att+".query"), n.linear(a, seq, att+".key"), n.linear(a, seq, att+".value"), seq, p.Heads, H, bias)
		a = n.linear(ctx, seq, l+".attention.output.dense")
		switch {
		case fam == "dinov2":
			a = scaleRows(a, n.get(l+".layer_scale1.lambda1"))
		case fam == "beit" && beit.LayerScale > 0:
			a = scaleRows(a, n.get(l+".lambda_1"))
		}
		addInto(x, a)
		m := n.layerNorm(x, seq, ln2, p.Eps)
		switch {
		case fam == "dinov2" && dino.SwiGLU:
			hid := n.linear(m, seq, l+".mlp.weights_in")
			f := dino.MLPHidden
			g := make([]float64, seq*f)
			for r := 0; r < seq; r++ {
				for c := 0; c < f; c++ {
					g[r*f+c] = refAct(hid[r*2*f+c], "silu") * hid[r*2*f+f+c]
				}
			}
			m = n.linear(g, seq, l+".mlp.weights_out")
		default:
			in, out := l+".intermediate.dense", l+".output.dense"
			if fam == "dinov2" {
				in, out = l+".mlp.fc1", l+".mlp.fc2"
			}
			hid := n.linear(m, seq, in)
			for j := range hid {
				hid[j] = refAct(hid[j], p.Act)
			}
			m = n.linear(hid, seq, out)
		}
		switch {
		case fam == "dinov2":
			m = scaleRows(m, n.get(l+".layer_scale2.lambda1"))
		case fam == "beit" && beit.LayerScale > 0:
			m = scaleRows(m, n.get(l+".lambda_2"))
		}
		addInto(x, m)
	}
	outs := map[string][]float64{}
	if fam == "beit" {
		var pooled []float64
		if beit.MeanPool {
			pooled = make([]float64, H)
			for r := 1; r < seq; r++ {
				for c := 0; c < H; c++ {
					pooled[c] += x[r*H+c] / float64(seq-1)
				}
			}
			pooled = n.layerNorm(pooled, 1, pre+"pooler.layernorm", p.Eps)
		} else {
			pooled = n.layerNorm(x, seq, pre+"layernorm", p.Eps)[:H]
		}
		outs["logits"] = n.linear(pooled, 1, "classifier")
		return outs
	}
	hs := n.layerNorm(x, seq, pre+"layernorm", p.Eps)
	cls := hs[:H]
	switch n.arch.Name {
	case "ViTModel":
		outs["last_hidden_state"] = hs
		if _, ok := n.w["pooler.dense.weight"]; ok {
			po := n.linear(cls, 1, "pooler.dense")
			for i := range po {
				po[i] = math.Tanh(po[i])
			}
			outs["pooler_output"] = po
		}
	case "Dinov2Model":
		outs["last_hidden_state"] = hs
		outs["pooler_output"] = cls
	case "Dinov2ForImageClassification":
		in := append([]float64{}, cls...)
		mean := make([]float64, H)
		for r := 1; r < seq; r++ {
			for c := 0; c < H; c++ {
				mean[c] += hs[r*H+c] / float64(seq-1)
			}
		}
		outs["logits"] = n.linear(append(in, mean...), 1, "classifier")
	case "DeiTForImageClassificationWithTeacher":
		c := n.linear(cls, 1, "cls_classifier")
		d := n.linear(hs[H:2*H], 1, "distillation_classifier")
		avg := make([]float64, len(c))
		for i := range c {
			avg[i] = (c[i] + d[i]) / 2
		}
		outs["logits"], outs["cls_logits"], outs["distillation_logits"] = avg, c, d
	default:
		outs["logits"] = n.linear(cls, 1, "classifier")
	}
	return outs
}

// resizedPos resizes position embeddings with an independent bicubic
// evaluation: each output value as a 4×4 weighted sum written out directly.
func (n *refNet) resizedPos(pos []float64, tokens, dim, gh, gw int) []float64 {
	g := int(math.Sqrt(float64(len(pos)/dim - tokens)))
	w := func(x float64) float64 { // Keys kernel, a = -0.75
		const a = -0.75
		x = math.Abs(x)
		switch {
		case x <= 1:
			return (a+2)*x*x*x - (a+3)*x*x + 1
		case x < 2:
			return a*x*x*x - 5*a*x*x + 8*a*x - 4*a
		}
		return 0
	}
	clamp := func(i int) int { return min(max(i, 0), g-1) }
	out := append([]float64{}, pos[:tokens*dim]...)
	for oy := 0; oy < gh; oy++ {
		sy := (float64(oy)+0.5)*float64(g)/float64(gh) - 0.5
		for ox := 0; ox < gw; ox++ {
			sx := (float64(ox)+0.5)*float64(g)/float64(gw) - 0.5
			for c := 0; c < dim; c++ {
				var acc float64
				for iy := int(math.Floor(sy)) - 1; iy <= int(math.Floor(sy))+2; iy++ {
					for ix := int(math.Floor(sx)) - 1; ix <= int(math.Floor(sx))+2; ix++ {
						acc += w(sy-float64(iy)) * w(sx-float64(ix)) * pos[(tokens+clamp(iy)*g+clamp(ix))*dim+c]
					}
				}
				out = append(out, acc)
			}
		}
	}
	return out
}

// forwardBatch runs x [batch, C, H, W] and concatenates each output.
func (n *refNet) forwardBatch(x []float32, shape []int64) map[string][]float64 {
	b, c, h, w := int(shape[0]), int(shape[1]), int(shape[2]), int(shape[3])
	outs := map[string][]float64{}
	for i := 0; i < b; i++ {
		img := make([]float64, c*h*w)
		for j := range img {
			img[j] = float64(x[i*c*h*w+j])
		}
		for k, v := range n.forward(img, h, w) {
			outs[k] = append(outs[k], v...)
		}
	}
	return outs
}
