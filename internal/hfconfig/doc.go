// Package hfconfig reads the two Hugging Face files that describe a vision
// model beside its weights: config.json (Config, typed accessors over the
// raw members) and preprocessor_config.json (PreprocessorConfig, with the
// transformers image-processor class defaults filled in). It is the one
// reader convert and verify share, so the input size export builds a graph
// for and the size verify prepares images at come from the same rules.
//
// References: transformers' PretrainedConfig (configuration_utils.py) and
// the image processors under models/<name>/image_processing_<name>.py,
// get_size_dict in image_processing_utils.py.
package hfconfig
