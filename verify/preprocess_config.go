package verify

import (
	"github.com/quantpack/quantpack/internal/hfconfig"
)

// The preprocessor_config.json reader lives in internal/hfconfig, shared
// with convert (export sizes its graph input by the same rules verify
// prepares images with). These names keep verify's API.

// Size is a "size" or "crop_size" entry of preprocessor_config.json
// (hfconfig.Size).
type Size = hfconfig.Size

// PreprocessorConfig is a Hugging Face image processor's settings with the
// class defaults filled in (hfconfig.PreprocessorConfig).
type PreprocessorConfig = hfconfig.PreprocessorConfig

// SupportedProcessorClasses lists the classes ParsePreprocessorConfig
// reproduces.
func SupportedProcessorClasses() []string { return hfconfig.SupportedProcessorClasses() }

// ParsePreprocessorConfig reads a preprocessor_config.json
// (hfconfig.ParsePreprocessorConfig).
func ParsePreprocessorConfig(path string, data []byte, modelType string) (PreprocessorConfig, error) {
	return hfconfig.ParsePreprocessorConfig(path, data, modelType)
}

// DefaultPreprocessorConfig is used when a model directory has no
// preprocessor_config.json (hfconfig.DefaultPreprocessorConfig).
func DefaultPreprocessorConfig(modelType string, imageSize int) (PreprocessorConfig, error) {
	return hfconfig.DefaultPreprocessorConfig(modelType, imageSize)
}

// LoadPreprocessorConfig reads dir/preprocessor_config.json, or builds the
// defaults from dir/config.json (hfconfig.LoadPreprocessorConfig).
func LoadPreprocessorConfig(dir string) (PreprocessorConfig, error) {
	return hfconfig.LoadPreprocessorConfig(dir)
}
