//go:build !unix

package bundle

import "time"

func nowSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func cpuSeconds() float64 { return 0 }
