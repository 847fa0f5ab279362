package quant

// useAsm switches the assembly kernels on or off; tests turn it off to run
// the pure-Go kernels on the same inputs. hasAVX2 and hasF16Asm say whether
// this machine can run them (cpu_amd64.go, cpu_other.go).
var useAsm = true
