package main

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/quantpack/quantpack/formats/bundle"
	"github.com/quantpack/quantpack/internal/fault"
)

// maxKeyFile caps a key file read into memory: OpenSSH private keys are a
// few KiB even for RSA-16384.
const maxKeyFile = 1 << 20

// trustFlags are the flags check and unpack share to require a signature.
func trustFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "allowed-signers", Usage: "require a valid signature by a key in this OpenSSH allowed_signers `FILE`"},
		&cli.StringFlag{Name: "identity", Usage: "with --allowed-signers: the signer's principal must match `NAME`"},
	}
}

// trustFromFlags reads --allowed-signers; nil when it is not given.
func trustFromFlags(c *cli.Context) (*bundle.TrustPolicy, error) {
	file := c.String("allowed-signers")
	if file == "" {
		if c.String("identity") != "" {
			return nil, usagef("--identity needs --allowed-signers")
		}
		return nil, nil
	}
	f, err := openRegular(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	signers, err := bundle.ParseAllowedSigners(f, file)
	if err != nil {
		return nil, err
	}
	return &bundle.TrustPolicy{File: file, AllowedSigners: signers, Identity: c.String("identity")}, nil
}

// openRegular opens a file that must be a regular file (a FIFO or device
// would block or never end).
func openRegular(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, errNotRegularFile, fi.Mode().Type())
	}
	return os.Open(path)
}

var errNotRegularFile = fault.New(fault.Usage, "not a regular file")

// loadSigner returns the signer for --sign-key / --key PATH: an unencrypted
// OpenSSH private key, or — for an encrypted key, or a .pub file — the key
// of that name held by ssh-agent ($SSH_AUTH_SOCK).
func loadSigner(path string) (ssh.Signer, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, usagef("signing key: %v", err)
	}
	defer f.Close()
	b := make([]byte, maxKeyFile+1)
	n, _ := f.Read(b)
	for n < len(b) {
		k, err := f.Read(b[n:])
		n += k
		if err != nil {
			break
		}
	}
	if n > maxKeyFile {
		return nil, usagef("signing key %s: larger than %d bytes, not a key", path, maxKeyFile)
	}
	b = b[:n]
	signer, err := ssh.ParsePrivateKey(b)
	if err == nil {
		return signer, nil
	}
	var pub ssh.PublicKey
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		pub = missing.PublicKey
		if pub == nil {
			return nil, usagef("signing key %s is encrypted: load it into ssh-agent, or sign with ssh-keygen -Y sign -n %s and attach with quantpack sign --signature", path, bundle.SignNamespace)
		}
	default:
		var perr error
		if pub, _, _, _, perr = ssh.ParseAuthorizedKey(b); perr != nil {
			return nil, fmt.Errorf("signing key %s: %w: %v", path, bundle.ErrSigningKey, err)
		}
	}
	return agentSigner(path, pub)
}

// agentSigner finds pub among ssh-agent's keys.
func agentSigner(path string, pub ssh.PublicKey) (ssh.Signer, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, usagef("signing key %s needs ssh-agent (encrypted or public key) but SSH_AUTH_SOCK is not set", path)
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("ssh-agent at %s: %w", sock, err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		return nil, fmt.Errorf("ssh-agent: %w", err)
	}
	for _, s := range signers {
		if string(s.PublicKey().Marshal()) == string(pub.Marshal()) {
			return s, nil
		}
	}
	return nil, usagef("ssh-agent does not hold the key of %s (%s); ssh-add it", path, ssh.FingerprintSHA256(pub))
}

// signatureLines are the human lines describing a bundle's signatures.
func signatureLines(path string, sigs []bundle.SignatureInfo) []string {
	var out []string
	for _, s := range sigs {
		who := ""
		if len(s.Principal) > 0 {
			who = " by " + fmt.Sprint(s.Principal)
		}
		out = append(out, fmt.Sprintf("%s: signature %s %s%s: %s", path, s.KeyType, s.Fingerprint, who, s.Status))
	}
	return out
}
