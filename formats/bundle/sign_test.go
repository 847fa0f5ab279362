package bundle

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
)

// testSigner is an ed25519 key made from a fixed seed, so failures
// reproduce.
func testSigner(t testing.TB, seed byte) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// policyFor trusts keys under principal with the given options.
func policyFor(t testing.TB, principal, options string, keys ...ssh.Signer) *TrustPolicy {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(principal + " " + options + " " + string(ssh.MarshalAuthorizedKey(k.PublicKey())))
	}
	signers, err := ParseAllowedSigners(strings.NewReader(b.String()), "allowed_signers")
	if err != nil {
		t.Fatal(err)
	}
	return &TrustPolicy{File: "allowed_signers", AllowedSigners: signers}
}

// packSample packs the sample artifact (signed when key is set).
func packSample(t testing.TB, key ssh.Signer) string {
	t.Helper()
	src := t.TempDir()
	writeArtifact(t, src, sampleFiles(), sampleMeta)
	b, _ := packDir(t, src, PackOptions{Signer: key})
	return b
}

// A signed bundle checks and unpacks under a policy that lists its key;
// the unpacked directory holds the provenance, which still checks.
func TestSignedBundleVerifies(t *testing.T) {
	key := testSigner(t, 1)
	b := packSample(t, key)
	pol := policyFor(t, "ci@example.com", "", key)
	pol.Identity = "ci@example.com"
	res, err := Check(context.Background(), b, UnpackOptions{Trust: pol})
	if err != nil || !res.OK || !res.Trusted || !res.Provenance || len(res.Signatures) != 1 || res.Signatures[0].Status != "verified" {
		t.Fatalf("Check = %+v, %v; want ok, trusted, one verified signature", res, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	ures, err := Unpack(context.Background(), b, out, UnpackOptions{Trust: pol})
	if err != nil || !ures.Provenance || ures.FormatVersion != FormatVersion {
		t.Fatalf("Unpack = %+v, %v", ures, err)
	}
	if _, err := os.Stat(filepath.Join(out, ProvenanceName)); err != nil {
		t.Fatal(err)
	}
	d, err := Check(context.Background(), out, UnpackOptions{})
	if err != nil || !d.OK || !d.Provenance {
		t.Fatalf("Check(dir) = %+v, %v", d, err)
	}
	// Re-packing the unpacked directory gives the same archive: the old
	// provenance is skipped and regenerated to the same bytes.
	b2, _ := packDir(t, out, PackOptions{Signer: key})
	x, y := mustRead(t, b), mustRead(t, b2)
	if !bytes.Equal(x, y) {
		t.Error("re-packing an unpacked signed bundle changed its bytes")
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sign adds signatures without changing the archive: the bytes before the
// signature frame are identical, several keys coexist, and each of them
// alone satisfies a policy listing only it.
func TestSignKeepsPayload(t *testing.T) {
	b := packSample(t, nil)
	before := mustRead(t, b)
	payload := before[:len(before)-trailerLen]
	k1, k2 := testSigner(t, 1), testSigner(t, 2)
	for i, k := range []ssh.Signer{k1, k2, k1} { // k1 again replaces its own signature
		res, err := Sign(context.Background(), b, SignWith(k), UnpackOptions{})
		if err != nil {
			t.Fatalf("Sign %d: %v", i, err)
		}
		sum := sha256.Sum256(payload)
		if res.PayloadSHA256 != hexString(sum[:]) {
			t.Errorf("Sign %d: payload sha256 %s, want %x", i, res.PayloadSHA256, sum)
		}
	}
	after := mustRead(t, b)
	if !bytes.HasPrefix(after, payload) {
		t.Fatal("signing changed the archive bytes")
	}
	if !bytes.Equal(decompress(t, after), decompress(t, before)) {
		t.Fatal("signing changed the tar stream")
	}
	for _, k := range []ssh.Signer{k1, k2} {
		res, err := Check(context.Background(), b, UnpackOptions{Trust: policyFor(t, "*", "", k)})
		if err != nil || !res.Trusted || len(res.Signatures) != 2 {
			t.Errorf("Check with one key listed = %+v, %v; want trusted, 2 signatures", res, err)
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// withSigFrame replaces a bundle's signature frame with one holding blobs
// and reseals its trailer: what an attacker with write access can do.
func withSigFrame(t testing.TB, bundle []byte, frame []byte) []byte {
	t.Helper()
	body := bundle[:len(bundle)-trailerLen]
	n, _, err := findSigFrame(body)
	if err != nil {
		t.Fatal(err)
	}
	out := append(bytes.Clone(body[:len(body)-n]), frame...)
	sum := sha256.Sum256(out)
	return append(out, trailer(sum[:])...)
}

// sigOf returns the SSHSIG blob of the provenance of a bundle, made by key
// in namespace.
func sigOf(t testing.TB, bundle []byte, key ssh.Signer, namespace string) []byte {
	t.Helper()
	prov := provenanceOf(t, bundle)
	s, err := sshsig.Sign(bytes.NewReader(prov), key, sshsig.HashSHA512, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return s.Marshal()
}

func provenanceOf(t testing.TB, bundle []byte) []byte {
	t.Helper()
	_, st, err := verifyState(context.Background(), bytes.NewReader(bundle), "b", UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st.prov
}

// Every way a signature can fail a policy is refused with ErrSignature
// (exit 3) and the reason, and unpack leaves nothing behind.
func TestSignatureRefusals(t *testing.T) {
	key, other := testSigner(t, 1), testSigner(t, 2)
	signed := mustRead(t, packSample(t, key))
	unsigned := mustRead(t, packSample(t, nil))
	// A different artifact, validly signed by the trusted key.
	src := t.TempDir()
	writeArtifact(t, src, good, sampleMeta)
	otherB, _ := packDir(t, src, PackOptions{Signer: key})
	otherSigned := mustRead(t, otherB)
	_, otherBlobs, _ := findSigFrame(otherSigned[:len(otherSigned)-trailerLen])

	// A certificate key: SSHSIG allows it, quantpack does not support it.
	cert := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{"ci"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, other); err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	good := sigOf(t, signed, key, SignNamespace)
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

	cases := []struct {
		name   string
		bundle []byte
		policy *TrustPolicy
		reason string
	}{
		{"unsigned", unsigned, policyFor(t, "*", "", key), "not signed"},
		{"key not listed", signed, policyFor(t, "*", "", other), "is not in allowed_signers"},
		{"identity mismatch", signed, func() *TrustPolicy {
			p := policyFor(t, "ci@example.com", "", key)
			p.Identity = "eve@example.com"
			return p
		}(), "not for identity"},
		{"namespaces option", signed, policyFor(t, "*", `namespaces="git,file"`, key), "allows namespaces"},
		{"expired", signed, func() *TrustPolicy { p := policyFor(t, "*", `valid-before="20260101Z"`, key); p.Now = now; return p }(), "expired"},
		{"not yet valid", signed, func() *TrustPolicy { p := policyFor(t, "*", `valid-after="20270101Z"`, key); p.Now = now; return p }(), "valid only after"},
		{"cert-authority", signed, policyFor(t, "*", "cert-authority", key), "cert-authority"},
		{"wrong namespace", withSigFrame(t, signed, encodeSigFrame([][]byte{sigOf(t, signed, key, "git")})), policyFor(t, "*", "", key), `namespace "git"`},
		{"replayed from another bundle", withSigFrame(t, unsigned, encodeSigFrame(otherBlobs)), policyFor(t, "*", "", key), "over other bytes"},
		{"unsupported key type", withSigFrame(t, unsigned, encodeSigFrame([][]byte{sigOf(t, unsigned, certSigner, SignNamespace)})), policyFor(t, "*", "", key), "not supported"},
		{"truncated signature", withSigFrame(t, unsigned, encodeSigFrame([][]byte{good[:len(good)-7]})), policyFor(t, "*", "", key), "truncated"},
		{"truncated frame", withSigFrame(t, unsigned, truncatedFrame(good)), policyFor(t, "*", "", key), "signature frame"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeBundle(t, c.bundle)
			res, err := Check(context.Background(), p, UnpackOptions{Trust: c.policy})
			if !errors.Is(err, ErrSignature) || fault.ClassOf(err) != fault.Invalid || res.OK || res.Trusted {
				t.Fatalf("Check: %+v, %v; want ErrSignature (invalid input)", res, err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("Check error %q does not say %q", err, c.reason)
			}
			parent := t.TempDir()
			if _, err := Unpack(context.Background(), p, filepath.Join(parent, "out"), UnpackOptions{Trust: c.policy}); !errors.Is(err, ErrSignature) {
				t.Fatalf("Unpack: %v, want ErrSignature", err)
			}
			if names := dirNames(t, parent); len(names) != 0 {
				t.Errorf("refused unpack left %v", names)
			}
		})
	}
}

// truncatedFrame is a signature frame whose header and footer agree but
// whose entry declares more bytes than the frame holds.
func truncatedFrame(blob []byte) []byte {
	f := encodeSigFrame([][]byte{blob})
	f[8] += 16 // first entry's length, little-endian low byte
	return f
}

// Sign refuses a signature made elsewhere over other bytes or in another
// namespace, and never signs a bundle that fails its check.
func TestSignRefuses(t *testing.T) {
	key := testSigner(t, 1)
	b := packSample(t, nil)
	raw := mustRead(t, b)
	for name, sig := range map[string][]byte{
		"other namespace": sigOf(t, raw, key, "file"),
		"other bytes": func() []byte {
			s, _ := sshsig.Sign(strings.NewReader("x"), key, sshsig.HashSHA512, SignNamespace)
			return s.Marshal()
		}(),
		"garbage": []byte("not a signature"),
	} {
		if _, err := Sign(context.Background(), b, Attach(sig), UnpackOptions{}); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: Sign = %v, want ErrSignature", name, err)
		}
	}
	if !bytes.Equal(mustRead(t, b), raw) {
		t.Error("a refused signature changed the bundle")
	}
	bad := bytes.Clone(raw)
	tb := decompress(t, bad)
	tb[len(tb)/2] ^= 1
	corrupt := writeBundle(t, compress(t, tb))
	if _, err := Sign(context.Background(), corrupt, SignWith(key), UnpackOptions{}); err == nil {
		t.Error("Sign signed a corrupt bundle")
	}
	// An armored signature (what ssh-keygen writes) is accepted.
	s, err := sshsig.ParseSignature(sigOf(t, raw, key, SignNamespace))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(context.Background(), b, Attach(sshsig.Armor(s)), UnpackOptions{}); err != nil {
		t.Errorf("armored signature: %v", err)
	}
}

// The provenance is an in-toto Statement v1 with a SLSA v1 predicate whose
// subjects are exactly the manifest and the files, whose recipe is the
// manifest's options, deterministic, and which records a packed verify
// report's gates.
func TestProvenanceContent(t *testing.T) {
	files := sampleFiles()
	files["verify.json"] = []byte(`{"format":"quantpack-verify/1","ort_version":"1.30.0","device":"cpu","gates":{"passed":["top-1 drop 0.2 <= 0.5"],"failed":[]},"speedup":2.5}`)
	meta := map[string]any{"tool_version": "test", "precision": "int4", "block_size": 128, "method": "hqq",
		"source": map[string]any{"repo": "google/vit-base-patch16-224", "commit": "abc123", "files": []map[string]any{{"path": "model.safetensors", "size": 3, "sha256": strings.Repeat("ab", 32)}}}}
	src := t.TempDir()
	writeArtifact(t, src, files, meta)
	b1, _ := packDir(t, src, PackOptions{})
	b2, _ := packDir(t, src, PackOptions{})
	if !bytes.Equal(mustRead(t, b1), mustRead(t, b2)) {
		t.Fatal("two packs of one directory differ")
	}
	prov := provenanceOf(t, mustRead(t, b1))
	var st Statement
	if err := json.Unmarshal(prov, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != "https://in-toto.io/Statement/v1" || st.PredicateType != "https://slsa.dev/provenance/v1" {
		t.Errorf("types %q / %q", st.Type, st.PredicateType)
	}
	man := mustRead(t, filepath.Join(src, manifest.Name))
	want := map[string]string{manifest.Name: hexSum(man)}
	for p, b := range files {
		want[p] = hexSum(b)
	}
	if len(st.Subject) != len(want) {
		t.Errorf("%d subjects, want %d", len(st.Subject), len(want))
	}
	for _, s := range st.Subject {
		if want[s.Name] != s.Digest["sha256"] {
			t.Errorf("subject %s sha256 %s, want %s", s.Name, s.Digest["sha256"], want[s.Name])
		}
	}
	bd := st.Predicate.BuildDefinition
	for k, v := range map[string]string{"precision": `"int4"`, "block_size": "128", "method": `"hqq"`} {
		if string(bd.ExternalParameters[k]) != v {
			t.Errorf("externalParameters.%s = %s, want %s", k, bd.ExternalParameters[k], v)
		}
	}
	if len(bd.ResolvedDependencies) != 1 || bd.ResolvedDependencies[0].URI != "https://huggingface.co/google/vit-base-patch16-224/resolve/abc123/model.safetensors" ||
		bd.ResolvedDependencies[0].Digest["sha256"] != strings.Repeat("ab", 32) {
		t.Errorf("resolvedDependencies %+v", bd.ResolvedDependencies)
	}
	bp := st.Predicate.RunDetails.Byproducts
	if len(bp) != 1 || bp[0].Name != "verify.json" || bp[0].Annotations["gates"] == nil || bp[0].Annotations["ort_version"] != "1.30.0" {
		t.Errorf("byproducts %+v, want the verify report's gates", bp)
	}
	if st.Predicate.RunDetails.Builder.Version["artifact_made_by"] != "test" {
		t.Errorf("builder %+v", st.Predicate.RunDetails.Builder)
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hexString(s[:])
}

// A provenance that does not describe the bundle is refused even when the
// trailer is resealed: a subject hash changed, a subject missing.
func TestProvenanceMismatchRefused(t *testing.T) {
	man := manifestFor(t, good)
	prov, err := buildProvenance(man, fileList(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	v2 := func(p []byte) []byte {
		m := manifestEntry(man)
		m.hdr.PAXRecords[VersionRecord] = "2"
		return compress(t, makeTar(t, m, file(ProvenanceName, p), file("a.bin", good["a.bin"]), file("dir/b.bin", good["dir/b.bin"])))
	}
	if _, err := Verify(context.Background(), bytes.NewReader(v2(prov)), "ok", UnpackOptions{}); err != nil {
		t.Fatalf("hand-made v2 bundle: %v", err)
	}
	changed := bytes.Replace(prov, []byte(hexSum(good["a.bin"])), []byte(hexSum([]byte("x"))), 1)
	var st Statement
	json.Unmarshal(prov, &st)
	st.Subject = st.Subject[:len(st.Subject)-1]
	short, _ := json.Marshal(st)
	for name, p := range map[string][]byte{"changed hash": changed, "missing subject": short, "not json": []byte("{")} {
		_, err := Verify(context.Background(), bytes.NewReader(v2(p)), name, UnpackOptions{})
		if !errors.Is(err, ErrManifest) {
			t.Errorf("%s: %v, want ErrManifest", name, err)
		}
	}
}

// A format-1 bundle (no provenance) still unpacks, but cannot satisfy a
// signature policy.
func TestVersion1Bundle(t *testing.T) {
	v1 := compress(t, makeTar(t, manifestEntry(manifestFor(t, good)), file("a.bin", good["a.bin"]), file("dir/b.bin", good["dir/b.bin"])))
	p := writeBundle(t, v1)
	res, err := Unpack(context.Background(), p, filepath.Join(t.TempDir(), "o"), UnpackOptions{})
	if err != nil || res.FormatVersion != 1 || res.Provenance {
		t.Fatalf("Unpack v1 = %+v, %v", res, err)
	}
	_, err = Check(context.Background(), p, UnpackOptions{Trust: policyFor(t, "*", "", testSigner(t, 1))})
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "format version 1") {
		t.Errorf("Check v1 with policy: %v", err)
	}
}

func TestParseAllowedSigners(t *testing.T) {
	k := string(ssh.MarshalAuthorizedKey(testSigner(t, 1).PublicKey()))
	k = strings.TrimSpace(k)
	ok := "# comment\n\n" +
		"ci@example.com,*@release.example.com " + k + " a comment\n" +
		`dev@example.com namespaces="quantpack,git",valid-after="20260101",valid-before="202701011200Z" ` + k + "\n" +
		`"quoted name" cert-authority ` + k + "\n"
	got, err := ParseAllowedSigners(strings.NewReader(ok), "f")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Line != 3 || len(got[0].Principals) != 2 || got[1].Namespaces[1] != "git" ||
		got[1].ValidBefore != time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC) || !got[2].CertAuthority || got[2].Principals[0] != `"quoted name"` {
		t.Errorf("parsed %+v", got)
	}
	for name, bad := range map[string]string{
		"no key":         "ci@example.com\n",
		"bad key":        "ci@example.com ssh-ed25519 AAAA\n",
		"unknown option": "ci@example.com frobnicate " + k + "\n",
		"bad time":       `ci@example.com valid-after="2026" ` + k + "\n",
		"open quote":     `"ci@example.com ` + k + "\n",
		"empty":          "# nothing\n",
	} {
		if _, err := ParseAllowedSigners(strings.NewReader(bad), "f"); !errors.Is(err, ErrAllowedSigners) {
			t.Errorf("%s: %v, want ErrAllowedSigners", name, err)
		}
	}
}

// OpenSSH's pattern lists: wildcards, negation overrides.
func TestMatchPatternList(t *testing.T) {
	for _, c := range []struct {
		s        string
		patterns string
		want     bool
	}{
		{"ci@example.com", "ci@example.com", true},
		{"ci@example.com", "*@example.com", true},
		{"ci@example.com", "c?@example.com", true},
		{"ci@example.com", "*@example.org", false},
		{"ci@example.com", "*,!ci@*", false},
		{"dev@example.com", "*,!ci@*", true},
		{"a/b", "*", true},
		{"", "*", true},
		{"x", "", false},
	} {
		if got := matchPatternList(c.s, strings.Split(c.patterns, ",")); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.s, c.patterns, got, c.want)
		}
	}
}

// FuzzSignatureFrame: any bytes before the trailer are either not a frame,
// a frame whose blobs are judged without panicking, or an error.
func FuzzSignatureFrame(f *testing.F) {
	key := testSigner(f, 1)
	blob := func() []byte {
		s, _ := sshsig.Sign(strings.NewReader("p"), key, sshsig.HashSHA512, SignNamespace)
		return s.Marshal()
	}()
	f.Add(encodeSigFrame([][]byte{blob}))
	f.Add(encodeSigFrame([][]byte{blob, blob[:20]}))
	f.Add([]byte("QPS1"))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, blobs, err := findSigFrame(body)
		if err != nil {
			return
		}
		if n > len(body) || len(blobs) > MaxSignatures {
			t.Fatalf("frame of %d bytes in %d, %d blobs", n, len(body), len(blobs))
		}
		judgeSignatures(blobs, []byte("p"), policyFor(t, "*", "", key), "fuzz")
	})
}

// FuzzAllowedSigners: the parser never panics and accepts only lines
// with a parseable key.
func FuzzAllowedSigners(f *testing.F) {
	k := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testSigner(f, 1).PublicKey())))
	f.Add("ci@example.com " + k + "\n")
	f.Add(`a,b namespaces="quantpack",valid-before="20270101Z" ` + k + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAllowedSigners(strings.NewReader(s), "fuzz")
		if err == nil {
			for _, g := range got {
				if g.Key == nil || len(g.Principals) == 0 {
					t.Fatalf("accepted %+v", g)
				}
			}
		}
	})
}
