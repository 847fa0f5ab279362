package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/formats/bundle"
)

func init() { register(newSignCommand()) }

func newSignCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "add an OpenSSH signature to a bundle (its payload bytes do not change)",
		ArgsUsage: "BUNDLE (--key KEY | --signature FILE.sig)",
		Description: `Signs a bundle made by pack, in place: the bundle is checked first (a bundle
that fails "quantpack check" is never signed), then the signature is added in
a zstd skippable frame after the archive. The archive bytes, the files, the
manifest, the provenance and their sha256 stay as they were; only the
bundle's final sha256 trailer changes. Several signatures may coexist (one
per key: signing again with the same key replaces its signature).

What is signed: the bundle's quantpack.provenance.json, an in-toto Statement
(SLSA provenance v1) that lists quantpack.json and every file with its sha256,
the source checkpoint's files and the recipe. The signature is OpenSSH's
SSHSIG format (as "ssh-keygen -Y sign" and git's SSH commit signing write it),
namespace "quantpack", sha512.

--key KEY: an unencrypted OpenSSH private key (ed25519, ecdsa or rsa), or an
encrypted key / a .pub file whose key ssh-agent holds ($SSH_AUTH_SOCK).
--signature FILE: a signature made elsewhere, e.g. with a hardware key:
   tar --zstd -xOf B quantpack.provenance.json > prov.json
   ssh-keygen -Y sign -n quantpack -f ~/.ssh/id_ed25519_sk prov.json
   quantpack sign B --signature prov.json.sig
It must verify over this bundle's provenance, or sign refuses it.

Verify on the device with:
   quantpack check B --allowed-signers allowed_signers --identity ci@example.com
   quantpack unpack B -o DIR --allowed-signers allowed_signers

With --json, prints one object:
   {"bundle": B, "sha256": of the signed file, "bytes": size,
    "payload_sha256": of the archive bytes (unchanged by signing),
    "added": {key_type, fingerprint, namespace, hash, status},
    "signatures": [the same, for every signature]}

Example:
   quantpack pack vit-int8 -o vit-int8.tar.zst
   quantpack sign vit-int8.tar.zst --key ~/.ssh/id_ed25519

` + exitCodeHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "OpenSSH private key `FILE` (or a .pub whose key ssh-agent holds)"},
			&cli.StringFlag{Name: "signature", Usage: "attach an SSHSIG `FILE` made by ssh-keygen -Y sign -n quantpack over the provenance"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("sign takes one BUNDLE, got %d arguments", c.NArg())
			}
			if (c.String("key") == "") == (c.String("signature") == "") {
				return usagef("sign needs exactly one of --key and --signature")
			}
			return runSign(c.Context, signOptions{
				Bundle: c.Args().First(), Key: c.String("key"), Signature: c.String("signature"), JSON: c.Bool("json"),
			}, os.Stdout)
		},
	}
}

type signOptions struct {
	Bundle, Key, Signature string
	JSON                   bool
}

func runSign(ctx context.Context, o signOptions, w io.Writer) error {
	var mk func([]byte) ([]byte, error)
	if o.Key != "" {
		signer, err := loadSigner(o.Key)
		if err != nil {
			return err
		}
		mk = bundle.SignWith(signer)
	} else {
		f, err := openRegular(o.Signature)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
		f.Close()
		if err != nil {
			return err
		}
		mk = bundle.Attach(b)
	}
	res, err := bundle.Sign(ctx, o.Bundle, mk, bundle.UnpackOptions{})
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(w, res)
	}
	_, err = fmt.Fprintf(w, "%s: signed with %s %s (%d signature(s)); payload sha256 %s unchanged\n",
		res.Bundle, res.Added.KeyType, res.Added.Fingerprint, len(res.Signatures), res.PayloadSHA256)
	return err
}
