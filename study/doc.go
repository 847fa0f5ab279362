// Package study reproduces, with real measurements, the seed benchmark's
// model × precision matrix: for each checkpoint it exports every precision,
// verifies each against the model's own FP32 export on ONNX Runtime, and
// writes report.md (the seed's tables), report.csv, report.json (every raw
// number and its provenance) and heatmaps. Finished cells are cached under
// the report directory, keyed by input hashes and settings, so an
// interrupted study resumes where it stopped.
package study
