package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/manifest"
)

// SignResult describes a bundle after Sign; it is also the JSON that
// `quantpack sign --json` prints.
type SignResult struct {
	Bundle     string          `json:"bundle"`
	SHA256     string          `json:"sha256"` // of the signed bundle file
	Bytes      int64           `json:"bytes"`
	Added      SignatureInfo   `json:"added"`
	Signatures []SignatureInfo `json:"signatures"` // all of them, the new one last
	// PayloadSHA256 is the sha256 of the bytes before the signature frame
	// (the compressed archive), the same before and after signing.
	PayloadSHA256 string `json:"payload_sha256"`
}

// SignWith returns a signature maker for Sign that signs with key.
func SignWith(key ssh.Signer) func(prov []byte) ([]byte, error) {
	return func(prov []byte) ([]byte, error) { return signProvenance(prov, key) }
}

// Attach returns a signature maker for Sign that uses a signature made
// elsewhere (`ssh-keygen -Y sign -n quantpack` over the provenance), in
// armored or wire form; Sign checks it over this bundle's provenance.
func Attach(sig []byte) func(prov []byte) ([]byte, error) {
	return func([]byte) ([]byte, error) {
		if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN SSH SIGNATURE-----")) {
			s, err := sshsig.Unarmor(sig)
			if err != nil {
				return nil, fmt.Errorf("%w: armored signature: %v", ErrSignature, err)
			}
			return s.Marshal(), nil
		}
		return sig, nil
	}
}

// Sign adds a signature to the bundle at path, in place and atomically. The
// bundle is verified first (a bundle that fails check is never signed); the
// signature, made by mk over the provenance, must verify over it; then the
// compressed archive is copied byte for byte, followed by the signature
// frame holding the earlier signatures (one per key: a key that signed
// before is replaced) and the new one, and a new trailer. The files, the
// manifest, the provenance and their hashes do not change.
func Sign(ctx context.Context, path string, mk func(prov []byte) ([]byte, error), opts UnpackOptions) (*SignResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opts.Trust = nil
	_, st, err := verifyState(ctx, f, path, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: refusing to sign a bundle that does not check: %w", path, err)
	}
	if st.prov == nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrSignature, errNoProvenance)
	}
	blob, err := mk(st.prov)
	if err != nil {
		return nil, err
	}
	if len(blob) > maxSignatureBlob {
		return nil, fmt.Errorf("%w: signature is %d bytes, limit %d", ErrSignature, len(blob), maxSignatureBlob)
	}
	sig, info, err := checkSignature(blob, st.prov)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrSignature, err)
	}
	info.Status = "valid"
	blobs := make([][]byte, 0, len(st.sigs)+1)
	for _, b := range st.sigs {
		if old, _, err := checkSignature(b, st.prov); err == nil && bytes.Equal(old.PublicKey.Marshal(), sig.PublicKey.Marshal()) {
			continue // re-signing with the same key replaces its signature
		}
		blobs = append(blobs, b)
	}
	blobs = append(blobs, blob)
	if len(blobs) > MaxSignatures {
		return nil, fmt.Errorf("%s: %w: already %d signatures, limit %d", path, ErrSignature, len(st.sigs), MaxSignatures)
	}

	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	payload := fi.Size() - int64(trailerLen) - int64(st.sigLen)
	if payload <= 0 {
		return nil, fmt.Errorf("%s: %w: no archive before the signatures", path, ErrCorrupt)
	}
	af, err := atomicfile.Create(path)
	if err != nil {
		return nil, err
	}
	defer af.Abort()
	whole := sha256.New() // the new file's bytes before its trailer
	old := sha256.New()   // the old file's, to check it did not change since it was verified
	pay := sha256.New()
	if _, err := io.Copy(io.MultiWriter(af, whole, old, pay), io.NewSectionReader(f, 0, payload)); err != nil {
		return nil, err
	}
	tail := make([]byte, st.sigLen+trailerLen)
	if _, err := f.ReadAt(tail, payload); err != nil {
		return nil, fmt.Errorf("%s: read: %w", path, err)
	}
	old.Write(tail[:st.sigLen])
	if !bytes.Equal(tail[st.sigLen:], trailer(old.Sum(nil))) {
		return nil, fmt.Errorf("%s: %w: the bundle changed while it was being signed", path, ErrChanged)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	frame := encodeSigFrame(blobs)
	whole.Write(frame)
	if _, err := af.Write(frame); err != nil {
		return nil, err
	}
	sum := whole.Sum(nil)
	if _, err := af.Write(trailer(sum)); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := af.Commit(); err != nil {
		return nil, err
	}
	out := &SignResult{Bundle: path, Bytes: payload + int64(len(frame)+trailerLen), Added: info,
		PayloadSHA256: hex.EncodeToString(pay.Sum(nil))}
	h, err := manifest.HashFileContext(ctx, path)
	if err != nil {
		return nil, err
	}
	out.SHA256 = h.SHA256
	out.Signatures, _ = judgeSignatures(blobs, st.prov, nil, path)
	return out, nil
}
