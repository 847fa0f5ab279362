package verify

import "testing"

func TestParseChildReport(t *testing.T) {
	const rep = "{\n  \"model\": \"m.onnx\",\n  \"batch\": 2,\n  \"peak_rss_bytes\": 10,\n  \"rss_bytes\": 9,\n  \"gpu_bytes\": 1234,\n  \"gpu_device\": \"0: X\"\n}\n"
	for _, out := range []string{rep, "a line a library printed\n{not json}\n" + rep} {
		r, err := ParseChildReport([]byte(out))
		if err != nil || r.GPUBytes == nil || *r.GPUBytes != 1234 || r.GPUDevice != "0: X" || r.Batch != 2 {
			t.Fatalf("%q: %+v, %v", out, r, err)
		}
	}
	r, err := ParseChildReport([]byte(`{"peak_rss_bytes": 1, "rss_bytes": 1, "gpu_bytes": null, "gpu_note": "no NVML"}`))
	if err != nil || r.GPUBytes != nil || r.GPUNote != "no NVML" {
		t.Fatalf("null gpu_bytes: %+v, %v", r, err)
	}
	for _, bad := range []string{"", "no object", "{\"gpu_bytes\": \"many\"}", "{\"surprise\": 1}", "{\"gpu_bytes\": 1"} {
		if _, err := ParseChildReport([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
