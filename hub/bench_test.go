package hub

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/quantpack/quantpack/hub/hubtest"
)

// BenchmarkDownload measures a first download of a 64 MiB LFS file from the
// in-process fake over loopback: HTTP, the streaming sha256, the write and
// fsync of the blob. It is the cost quantpack adds on top of the network.
func BenchmarkDownload(b *testing.B) {
	const size = 64 << 20
	w := make([]byte, size)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	h := hubtest.New()
	defer h.Close()
	h.Add(testRepo, &hubtest.Repo{Commit: testCommit, Files: map[string][]byte{"config.json": []byte("{}"), "model.safetensors": w}})
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		opt := Options{Endpoint: h.URL, CacheDir: b.TempDir(), Token: "-"}
		if _, _, err := Resolve(context.Background(), testRepo, opt); err != nil {
			b.Fatal(err)
		}
	}
}
