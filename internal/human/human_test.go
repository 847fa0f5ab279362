package human

import (
	"math"
	"testing"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		1<<20 - 1: "1024.0 KiB", // 1048575/1024 = 1023.999…, printed with one decimal
		1 << 20:   "1.0 MiB", 346_245_120: "330.2 MiB", 5 << 30: "5.0 GiB",
		math.MaxInt64: "8.0 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 999: "999", 1000: "1.0K", 5_717: "5.7K", 999_999: "1000.0K",
		1_000_000: "1.00M", 86_567_656: "86.57M", 1_200_000_000: "1.20B",
	} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}
