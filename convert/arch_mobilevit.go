package convert

import (
	"fmt"
	"math"

	"github.com/quantpack/quantpack/formats/safetensors"
)

// MobileViT (transformers models/mobilevit): convolutions hold most of the
// weights, so int8/int4/nf4 artifacts also store them per-output-channel int8.
//
// The classifier is not a float head here, unlike the ViT families: in
// MobileViT-XXS it holds 320k of 1.27M parameters, and kept at fp16 it alone
// puts the int8 artifact at 0.33× fp32 bytes (0.27× with it quantized,
// docs/mobilevit.md). Agreement with fp32 stays within the thresholds of
// TestMobileViTPrecisions.
var mobilevitFamily = &family{
	Name: "mobilevit",
	Archs: []Arch{
		{Name: "MobileViTForImageClassification", Prefix: "mobilevit."},
		{Name: "MobileViTModel", Prefix: ""},
	},
	Tensors:       mobilevitTensors,
	Graph:         mobilevitGraph,
	QuantizeConvs: true,
	Presets:       mobilevitPresets,
}

// mobilevitParams are the config keys MobileViTConfig defines
// (configuration_mobilevit.py), bounds-checked.
type mobilevitParams struct {
	Channels, Image, Patch int
	Hidden                 []int // hidden_sizes: the three MobileViT blocks' transformer widths
	Neck                   []int // neck_hidden_sizes: stem, layer 1..5 outputs, conv_1x1_exp
	Heads                  int
	MLPRatio, ExpandRatio  float64
	Kernel                 int
	OutputStride           int
	Eps                    float64
	Act                    string
	QKVBias                bool
	Labels                 int
}

// mobilevitStages is MobileViTEncoder: per stage, the number of inverted
// residuals (MobileNet stages) or transformer layers (MobileViT stages).
var mobilevitStages = [5]struct {
	vit    bool
	stride int
	depth  int
}{{false, 1, 1}, {false, 2, 3}, {true, 2, 2}, {true, 2, 4}, {true, 2, 3}}

// bnEps is MobileViTConvLayer's BatchNorm2d eps (fixed in the modeling code,
// not a config key).
const bnEps = 1e-5

func readMobilevitParams(c *Config) (mobilevitParams, error) {
	p := mobilevitParams{
		Channels:     c.Int("num_channels", 3),
		Image:        c.Int("image_size", 256),
		Patch:        c.Int("patch_size", 2),
		Hidden:       c.Ints("hidden_sizes", []int{144, 192, 240}),
		Neck:         c.Ints("neck_hidden_sizes", []int{16, 32, 64, 96, 128, 160, 640}),
		Heads:        c.Int("num_attention_heads", 4),
		MLPRatio:     c.Float("mlp_ratio", 2),
		ExpandRatio:  c.Float("expand_ratio", 4),
		Kernel:       c.Int("conv_kernel_size", 3),
		OutputStride: c.Int("output_stride", 32),
		Eps:          c.Float("layer_norm_eps", 1e-5),
		Act:          c.String("hidden_act", "silu"),
		QKVBias:      c.Bool("qkv_bias", true),
	}
	p.Labels = c.NumLabels()
	if err := c.Err(); err != nil {
		return p, err
	}
	bad := c.Invalid
	if len(p.Neck) != 7 {
		return p, bad("neck_hidden_sizes has %d entries, want 7", len(p.Neck))
	}
	if len(p.Hidden) != 3 {
		return p, bad("hidden_sizes has %d entries, want 3", len(p.Hidden))
	}
	for _, n := range p.Neck {
		if n <= 0 || n > maxHidden {
			return p, bad("neck_hidden_sizes entry %d out of range", n)
		}
	}
	for _, h := range p.Hidden {
		if h <= 0 || h > maxHidden || p.Heads <= 0 || h%p.Heads != 0 {
			return p, bad("hidden_sizes entry %d not divisible by num_attention_heads %d", h, p.Heads)
		}
	}
	switch {
	case p.Channels <= 0 || p.Channels > 16:
		return p, bad("num_channels %d out of range", p.Channels)
	case p.Patch <= 0 || p.Patch > 64 || p.Image <= 0 || p.Image > maxImage:
		return p, bad("patch_size %d / image_size %d out of range", p.Patch, p.Image)
	case p.Kernel <= 0 || p.Kernel > 15 || p.Kernel%2 == 0:
		return p, bad("conv_kernel_size %d: want an odd size up to 15", p.Kernel)
	case !(p.MLPRatio > 0 && p.MLPRatio <= 64) || !(p.ExpandRatio > 0 && p.ExpandRatio <= 64):
		return p, bad("mlp_ratio %g / expand_ratio %g out of range", p.MLPRatio, p.ExpandRatio)
	case p.Labels < 0 || p.Labels > maxLabels:
		return p, bad("num_labels %d out of range", p.Labels)
	case !(p.Eps > 0 && p.Eps <= 1):
		return p, bad("layer_norm_eps %g out of range", p.Eps)
	}
	if err := checkAct(c, p.Act); err != nil {
		return p, err
	}
	if p.OutputStride != 32 {
		// 8 and 16 dilate layers 4/5 (DeepLabV3 backbones); the
		// classification checkpoints all use 32.
		return p, fmt.Errorf("%s: %w: output_stride %d (only 32, the classification setting)", c.Path, ErrUnsupportedSetting, p.OutputStride)
	}
	return p, nil
}

// makeDivisible is transformers' make_divisible(value, divisor=8): round to
// the nearest multiple of 8, at least 8, never more than 10% below value.
func makeDivisible(value float64, divisor int) int {
	d := float64(divisor)
	n := math.Max(d, float64(int(value+d/2)/divisor*divisor))
	if n < 0.9*value {
		n += d
	}
	return int(n)
}

// expanded is MobileViTInvertedResidual's hidden width for in channels.
func (p mobilevitParams) expanded(in int) int {
	return makeDivisible(math.Round(float64(in)*p.ExpandRatio), 8)
}

// convLayer adds MobileViTConvLayer's tensors: bias-free conv weight and,
// with norm, BatchNorm2d's weight, bias, running stats and counter.
func (l *specList) convLayer(p string, out, inPerGroup, k int, norm bool) {
	l.add(p+".convolution.weight", out, inPerGroup, k, k)
	if !norm {
		return
	}
	n := p + ".normalization."
	l.add(n+"weight", out)
	l.add(n+"bias", out)
	l.add(n+"running_mean", out)
	l.add(n+"running_var", out)
	*l = append(*l, safetensors.TensorSpec{Name: n + "num_batches_tracked", DType: safetensors.I64, Shape: []int64{}})
}

func (l *specList) invertedResidual(p string, c mobilevitParams, in, out int) {
	e := c.expanded(in)
	l.convLayer(p+".expand_1x1", e, in, 1, true)
	l.convLayer(p+".conv_3x3", e, 1, 3, true)
	l.convLayer(p+".reduce_1x1", out, e, 1, true)
}

// mobilevitTensors lists MobileViTModel's and MobileViTForImageClassification's
// tensors (modeling_mobilevit.py, transformers 4.47).
func mobilevitTensors(a *Arch, c *Config, _ bool) (specList, error) {
	p, err := readMobilevitParams(c)
	if err != nil {
		return nil, err
	}
	var l specList
	pre := a.Prefix
	l.convLayer(pre+"conv_stem", p.Neck[0], p.Channels, 3, true)
	vitStage := 0
	for s, st := range mobilevitStages {
		in, out := p.Neck[s], p.Neck[s+1]
		base := fmt.Sprintf("%sencoder.layer.%d", pre, s)
		if !st.vit {
			for i := 0; i < st.depth; i++ {
				l.invertedResidual(fmt.Sprintf("%s.layer.%d", base, i), p, in, out)
				in = out
			}
			continue
		}
		h := p.Hidden[vitStage]
		vitStage++
		l.invertedResidual(base+".downsampling_layer", p, in, out)
		l.convLayer(base+".conv_kxk", out, out, p.Kernel, true)
		l.convLayer(base+".conv_1x1", h, out, 1, false)
		inter := int(float64(h) * p.MLPRatio)
		for i := 0; i < st.depth; i++ {
			l.vitLayer(fmt.Sprintf("%s.transformer.layer.%d.", base, i), h, inter, p.QKVBias)
		}
		l.norm(base+".layernorm", h)
		l.convLayer(base+".conv_projection", out, h, 1, true)
		l.convLayer(base+".fusion", out, 2*out, p.Kernel, true)
	}
	l.convLayer(pre+"conv_1x1_exp", p.Neck[6], p.Neck[5], 1, true)
	if a.Name == "MobileViTForImageClassification" && p.Labels > 0 {
		l.linear("classifier", p.Labels, p.Neck[6], true)
	}
	return l, nil
}

// mobilevitConfig is apple/mobilevit-*'s config.json as published, 1000
// ImageNet classes.
func mobilevitConfig(hidden, neck []int, expand, hiddenDropout float64) map[string]any {
	return map[string]any{"architectures": []string{"MobileViTForImageClassification"}, "model_type": "mobilevit",
		"num_channels": 3, "image_size": 256, "patch_size": 2, "hidden_sizes": hidden, "neck_hidden_sizes": neck,
		"num_attention_heads": 4, "mlp_ratio": 2.0, "expand_ratio": expand, "hidden_act": "silu",
		"conv_kernel_size": 3, "output_stride": 32, "hidden_dropout_prob": hiddenDropout,
		"attention_probs_dropout_prob": 0.0, "classifier_dropout_prob": 0.1, "initializer_range": 0.02,
		"layer_norm_eps": 1e-5, "qkv_bias": true, "aspp_out_channels": 256, "atrous_rates": []int{6, 12, 18},
		"aspp_dropout_prob": 0.1, "semantic_loss_ignore_index": 255, "id2label": labels(1000)}
}

// mobilevitProcessor is MobileViTImageProcessor as apple/mobilevit-*
// publish it: resize the shortest edge to 288 (bilinear), center-crop 256,
// rescale by 1/255 without normalization and flip RGB to BGR
// (do_flip_channel_order), as the original cvnets models were trained.
var mobilevitProcessor = map[string]any{"image_processor_type": "MobileViTImageProcessor", "do_resize": true,
	"size": map[string]int{"shortest_edge": 288}, "resample": 2, "do_center_crop": true,
	"crop_size": map[string]int{"height": 256, "width": 256}, "do_rescale": true, "rescale_factor": 1.0 / 255,
	"do_flip_channel_order": true}

// mobilevitPresets are apple/mobilevit-*.
var mobilevitPresets = []*Preset{
	{Name: "mobilevit-small", Repo: "apple/mobilevit-small", Arch: "MobileViTForImageClassification",
		Params: "5.6M", Config: mobilevitConfig([]int{144, 192, 240}, []int{16, 32, 64, 96, 128, 160, 640}, 4.0, 0.1), Pre: mobilevitProcessor},
	{Name: "mobilevit-xx-small", Repo: "apple/mobilevit-xx-small", Arch: "MobileViTForImageClassification",
		Params: "1.3M", Config: mobilevitConfig([]int{64, 80, 96}, []int{16, 16, 24, 48, 64, 80, 320}, 2.0, 0.05), Pre: mobilevitProcessor},
}
