// Package verify runs exported models and compares them: the Runner
// interface (implemented by verify/ort over ONNX Runtime), latency and
// throughput measurement, output agreement metrics, image preprocessing as
// Hugging Face's preprocessor_config.json describes it, and ImageFolder
// datasets. See docs/verify.md for what is measured and how.
package verify
