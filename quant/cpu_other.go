//go:build !amd64 || purego

package quant

const (
	hasAVX2     = false
	hasF16Asm   = false
	hasStatsAsm = false
)

func f32ToF16Asm([]uint16, []float32) (int, int)       { return 0, 0 }
func f16ToF32Asm([]float32, []uint16) int              { return 0 }
func f32ToBF16Asm([]uint16, []float32) (int, int)      { return 0, 0 }
func absMaxBitsAsm([]float32) uint32                   { return 0 }
func quantizeInt8Asm([]int8, []float32, float32) int   { return 0 }
func nf4PairsAsm([]byte, []float32, float32) int       { return 0 }
func sumPairsAsm([]float32, []float32) (ErrorAcc, int) { return ErrorAcc{}, 0 }
func dequantNF4Asm([]float32, []byte, float32) int     { return 0 }
