package convert

// goldenConvertOptions are the options TestGoldenOutputs converts with:
// every default, as the CLI's plain `convert --precision P` asks.
func goldenConvertOptions(p Precision) Options { return Options{Precision: p} }
