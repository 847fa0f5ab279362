//go:build !unix

package safetensors

import "os"

// mapFile never maps on systems without unix mmap; Open reads instead.
func mapFile(*os.File, int64) ([]byte, func() error) { return nil, nil }

func dontNeed([]byte) {}
