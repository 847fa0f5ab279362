package bundle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/quantpack/quantpack/internal/fault"
)

// Signatures are OpenSSH SSHSIG blobs (PROTOCOL.sshsig: what `ssh-keygen -Y
// sign` writes and git uses for SSH commit signing), namespace SignNamespace,
// over the bytes of the bundle's provenance entry (ProvenanceName). Since the
// provenance lists quantpack.json and every file with its sha256, and every
// file is checked against the manifest as it streams, one signature covers
// the whole payload; `ssh-keygen -Y verify` can check it over the provenance
// extracted with any tar.
//
// They are stored in one zstd skippable frame between the compressed archive
// and the trailer, so that any zstd decoder skips them and adding one (sign)
// leaves the archive bytes untouched:
//
//	magic 0x184D2A5F (LE) | content length (LE u32) | content
//	content = { sig length (LE u32) | SSHSIG wire blob }... | content length (LE u32) | "QPS1"
//
// The footer repeats the length so that a reader that kept the file's last
// bytes can find the frame backwards from the trailer.
const (
	// SignNamespace is the SSHSIG namespace of bundle signatures
	// (`ssh-keygen -Y sign -n quantpack`).
	SignNamespace = "quantpack"

	sigMagic  = 0x184D2A5F // a skippable-frame magic other than the trailer's
	sigTag    = "QPS1"
	sigFooter = 4 + len(sigTag)

	// MaxSignatures caps the signatures one bundle carries.
	MaxSignatures = 16
	// maxSignatureBlob caps one SSHSIG blob: an RSA-16384 key and signature
	// take about 4 KiB; ed25519 about 300 bytes.
	maxSignatureBlob = 8 << 10
	// maxSigFrame is the most bytes a signature frame may take, header
	// included: what a reader keeps of the file's tail.
	maxSigFrame = 8 + MaxSignatures*(4+maxSignatureBlob) + sigFooter
)

// Signature sentinels: all class Invalid (exit 3), like a tampered file,
// except an unsupported signing key (Unsupported, exit 4).
var (
	// ErrSignature: a signature is missing, malformed, invalid, by a key
	// that is not allowed, or over other bytes.
	ErrSignature = fault.New(fault.Invalid, "bundle: signature check failed")
	// ErrSigningKey: the key given to sign with cannot be used.
	ErrSigningKey = fault.New(fault.Unsupported, "bundle: unsupported signing key")
)

// SignHash is the SSHSIG hash algorithm quantpack signs with (the default
// of ssh-keygen); both sha256 and sha512 are accepted when verifying.
const SignHash = sshsig.HashSHA512

// encodeSigFrame returns the skippable frame holding blobs, or nil for none.
func encodeSigFrame(blobs [][]byte) []byte {
	if len(blobs) == 0 {
		return nil
	}
	var content []byte
	for _, b := range blobs {
		content = binary.LittleEndian.AppendUint32(content, uint32(len(b)))
		content = append(content, b...)
	}
	n := uint32(len(content) + sigFooter)
	content = binary.LittleEndian.AppendUint32(content, n)
	content = append(content, sigTag...)
	out := binary.LittleEndian.AppendUint32(nil, sigMagic)
	out = binary.LittleEndian.AppendUint32(out, n)
	return append(out, content...)
}

// findSigFrame looks for a signature frame at the end of body (the bundle
// without its trailer). It returns the frame's length (0 when body does not
// end with one) and the SSHSIG blobs in it. A frame whose header and footer
// agree but whose content does not parse is an error: it was meant to be one.
func findSigFrame(body []byte) (int, [][]byte, error) {
	if len(body) < 8+sigFooter || string(body[len(body)-len(sigTag):]) != sigTag {
		return 0, nil, nil
	}
	n := int64(binary.LittleEndian.Uint32(body[len(body)-sigFooter:]))
	start := int64(len(body)) - 8 - n
	if n < int64(sigFooter) || start < 0 ||
		binary.LittleEndian.Uint32(body[start:]) != sigMagic || int64(binary.LittleEndian.Uint32(body[start+4:])) != n {
		// Not a frame of ours: the compressed data happens to end in the tag.
		return 0, nil, nil
	}
	content := body[start+8 : int64(len(body))-int64(sigFooter)]
	var blobs [][]byte
	for len(content) > 0 {
		if len(content) < 4 {
			return 0, nil, fmt.Errorf("signature frame: %d stray bytes", len(content))
		}
		k := int(binary.LittleEndian.Uint32(content))
		if k > maxSignatureBlob || k > len(content)-4 {
			return 0, nil, fmt.Errorf("signature frame: signature %d declares %d bytes, %d left (limit %d)", len(blobs)+1, k, len(content)-4, maxSignatureBlob)
		}
		if len(blobs) == MaxSignatures {
			return 0, nil, fmt.Errorf("signature frame: more than %d signatures", MaxSignatures)
		}
		blobs = append(blobs, content[4:4+k])
		content = content[4+k:]
	}
	return int(8 + n), blobs, nil
}

// SignatureInfo describes one signature found in a bundle; it is part of
// the JSON that check and unpack print.
type SignatureInfo struct {
	KeyType     string `json:"key_type,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"` // SHA256:... as ssh-keygen -l prints it
	Namespace   string `json:"namespace,omitempty"`
	Hash        string `json:"hash,omitempty"`
	// Status is "verified" (valid, by an allowed signer), "valid" (the
	// signature matches the provenance, no allowed signers were given), or
	// the reason it was refused.
	Status    string   `json:"status"`
	Principal []string `json:"principals,omitempty"` // the allowed-signers line that matched
	// SSHSIG is the signature, armored as ssh-keygen writes it: save it as
	// FILE.sig to check it with `ssh-keygen -Y verify` over the provenance.
	SSHSIG string `json:"sshsig,omitempty"`
}

// signedMessage parses an SSHSIG blob and checks it over msg with its own
// public key; the result says why it does not hold, or is nil.
func checkSignature(blob, msg []byte) (*sshsig.Signature, SignatureInfo, error) {
	info := SignatureInfo{}
	sig, err := sshsig.ParseSignature(blob)
	if err != nil {
		return nil, info, fmt.Errorf("malformed or truncated SSHSIG: %v", err)
	}
	info.KeyType, info.Fingerprint = sig.PublicKey.Type(), ssh.FingerprintSHA256(sig.PublicKey)
	info.Namespace, info.Hash = sig.Namespace, string(sig.HashAlgorithm)
	info.SSHSIG = string(sshsig.Armor(sig))
	if !supportedKeyType(sig.PublicKey.Type()) {
		return sig, info, fmt.Errorf("key type %s is not supported (ed25519, ecdsa, rsa, sk-ed25519, sk-ecdsa are)", sig.PublicKey.Type())
	}
	if sig.Namespace != SignNamespace {
		return sig, info, fmt.Errorf("namespace %q, bundles are signed in %q", sig.Namespace, SignNamespace)
	}
	if err := sshsig.Verify(bytes.NewReader(msg), sig, sig.PublicKey, sig.HashAlgorithm, SignNamespace); err != nil {
		return sig, info, fmt.Errorf("signature does not match this bundle's provenance (made over other bytes): %v", err)
	}
	return sig, info, nil
}

func supportedKeyType(t string) bool {
	switch t {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return true
	}
	return false
}

// signProvenance signs prov with signer in SignNamespace.
func signProvenance(prov []byte, signer ssh.Signer) ([]byte, error) {
	if t := signer.PublicKey().Type(); !supportedKeyType(t) || strings.HasPrefix(t, "sk-") {
		return nil, fmt.Errorf("%w: %s (use ed25519, ecdsa or rsa; for hardware keys sign with ssh-keygen -Y sign and attach with quantpack sign --signature)", ErrSigningKey, t)
	}
	sig, err := sshsig.Sign(bytes.NewReader(prov), signer, SignHash, SignNamespace)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSigningKey, err)
	}
	return sig.Marshal(), nil
}

// judgeSignatures checks every blob over prov and, with a policy, requires
// at least one valid signature by an allowed signer. It returns what it
// found, and an error wrapping ErrSignature that says why when the policy
// is not met (or when policy is nil and a blob is malformed: a damaged
// frame is never silently ignored).
func judgeSignatures(blobs [][]byte, prov []byte, policy *TrustPolicy, where string) ([]SignatureInfo, error) {
	infos := make([]SignatureInfo, 0, len(blobs))
	var reasons []string
	accepted := false
	for i, b := range blobs {
		sig, info, err := checkSignature(b, prov)
		switch {
		case err != nil:
			info.Status = err.Error()
		case policy == nil:
			info.Status = "valid"
		default:
			line, why := policy.allows(sig.PublicKey)
			if line == nil {
				info.Status = why
			} else {
				info.Status, info.Principal, accepted = "verified", line.Principals, true
			}
		}
		if info.Status != "verified" && info.Status != "valid" {
			reasons = append(reasons, fmt.Sprintf("signature %d (%s %s): %s", i+1, info.KeyType, info.Fingerprint, info.Status))
		}
		infos = append(infos, info)
	}
	if policy == nil || accepted {
		return infos, nil
	}
	if len(blobs) == 0 {
		return infos, fmt.Errorf("%s: %w: bundle is not signed", where, ErrSignature)
	}
	return infos, fmt.Errorf("%s: %w: no signature by an allowed signer: %s", where, ErrSignature, strings.Join(reasons, "; "))
}

// errNoProvenance is the reason a format-1 bundle cannot satisfy a policy.
var errNoProvenance = errors.New("format version 1 bundle: no provenance, so nothing a signature could cover (re-pack it)")
