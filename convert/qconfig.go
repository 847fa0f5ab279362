package convert

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/hfconfig"
	"github.com/quantpack/quantpack/internal/safeio"
)

// bnbConfig is transformers' BitsAndBytesConfig.to_dict(), the
// quantization_config that from_pretrained reads for int8 and nf4.
type bnbConfig struct {
	QuantMethod           string   `json:"quant_method"`
	LoadIn8Bit            bool     `json:"load_in_8bit"`
	LoadIn4Bit            bool     `json:"load_in_4bit"`
	PrivLoadIn8Bit        bool     `json:"_load_in_8bit"`
	PrivLoadIn4Bit        bool     `json:"_load_in_4bit"`
	LLMInt8Threshold      float64  `json:"llm_int8_threshold"`
	LLMInt8SkipModules    []string `json:"llm_int8_skip_modules"`
	LLMInt8FP32CPUOffload bool     `json:"llm_int8_enable_fp32_cpu_offload"`
	LLMInt8HasFP16Weight  bool     `json:"llm_int8_has_fp16_weight"`
	BnB4BitQuantType      string   `json:"bnb_4bit_quant_type"`
	BnB4BitUseDoubleQuant bool     `json:"bnb_4bit_use_double_quant"`
	BnB4BitComputeDType   string   `json:"bnb_4bit_compute_dtype"`
	BnB4BitQuantStorage   string   `json:"bnb_4bit_quant_storage"`
}

// quantpackInt4Config describes our int4 layout; transformers cannot load it
// (there is no matching quantizer) but export and inspect read it.
type quantpackInt4Config struct {
	QuantMethod         string   `json:"quant_method"`
	Bits                int      `json:"bits"`
	BlockSize           int      `json:"block_size"`
	Symmetric           bool     `json:"symmetric"`
	Layout              string   `json:"layout"`
	ScaleDType          string   `json:"scale_dtype"`
	ModulesNotConverted []string `json:"modules_not_converted"`
	// BlockPerTensor: the weights' blocks differ (the per-tensor rule of a
	// conversion without --block-size); block_size is the largest, each
	// weight's own is its codes' shape [N, k_blocks, block/2].
	BlockPerTensor bool `json:"block_per_tensor,omitempty"`
}

// skipModules lists the Linear-shaped modules left float, which bitsandbytes
// must not replace when loading.
func skipModules(items []*item) []string {
	set := map[string]bool{}
	for _, it := range items {
		t := it.src.TensorInfo
		// A Linear that a mixed artifact keeps float is skipped too.
		if len(t.Shape) == 2 && strings.HasSuffix(t.Name, ".weight") && (it.role != RoleLinear || isFloatScheme(it.scheme)) {
			set[prefixOf(t.Name)] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writeConfig writes config.json with torch_dtype and quantization_config.
// A bare .safetensors source has no config, and the artifact gets none.
func writeConfig(s *Source, dir string, items []*item, opt *Options) error {
	if s.Config == nil {
		return nil
	}
	// Copy the preprocessing config along, so the artifact is self-contained.
	if b, err := safeio.ReadFile(filepath.Join(s.Dir, "preprocessor_config.json"), hfconfig.MaxPreprocessorBytes); err == nil {
		if err := atomicfile.WriteFile(filepath.Join(dir, "preprocessor_config.json"), b); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cfg := *s.Config
	cfg.Raw = cloneRaw(s.Config.Raw)
	torch := opt.restTorchDType()
	if err := cfg.Set("torch_dtype", torch); err != nil {
		return err
	}
	switch opt.Precision {
	case Int8, NF4:
		q := bnbConfig{QuantMethod: "bitsandbytes", LLMInt8Threshold: 6.0, LLMInt8SkipModules: skipModules(items),
			BnB4BitQuantType: "fp4", BnB4BitComputeDType: "float32", BnB4BitQuantStorage: "uint8"}
		if opt.Precision == Int8 {
			q.LoadIn8Bit, q.PrivLoadIn8Bit = true, true
		} else {
			q.LoadIn4Bit, q.PrivLoadIn4Bit = true, true
			q.BnB4BitQuantType = "nf4"
			q.BnB4BitUseDoubleQuant = opt.doubleQuant()
			q.BnB4BitComputeDType = torch
		}
		if err := cfg.Set("quantization_config", q); err != nil {
			return err
		}
	case Int4:
		q := quantpackInt4Config{QuantMethod: "quantpack", Bits: 4, BlockSize: opt.blockSize(), Symmetric: !opt.Asymmetric,
			Layout: "matmulnbits", ScaleDType: "float32", ModulesNotConverted: skipModules(items), BlockPerTensor: blocksVary(items, opt)}
		if err := cfg.Set("quantization_config", q); err != nil {
			return err
		}
	default:
		delete(cfg.Raw, "quantization_config")
	}
	b, err := cfg.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), b)
}

func cloneRaw(m map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
