package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/formats/bundle"
	"github.com/quantpack/quantpack/internal/human"
)

func init() { register(newCheckCommand()) }

func newCheckCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "verify a bundle or an artifact directory against its manifest",
		ArgsUsage: "PATH",
		Description: `PATH is a bundle (.tar.zst from pack) or an artifact directory.

A directory: every file is hashed and compared with quantpack.json; files
missing, not listed, or with another size or sha256 are reported.
A bundle: it is read as a stream and verified without extracting anything,
with the same checks as unpack; unsafe or corrupt archives stop the check
with that error, content differences are all collected and reported.

Signatures (bundles): every signature is checked over the bundle's
provenance and listed. With --allowed-signers FILE (OpenSSH allowed_signers
format, as for "ssh-keygen -Y verify" and git's gpg.ssh.allowedSignersFile)
the check also requires at least one valid signature, namespace "quantpack",
by a key listed there (whose principals match --identity when given, whose
namespaces= option allows "quantpack" and whose valid-after/valid-before
hold now); a bundle that is unsigned, signed by another key, or whose
signature was made over other bytes fails.

Any difference or refused signature exits with status 3.

With --json, prints one object (also when differences are found):
   {"path": PATH, "kind": "bundle"|"dir", "ok": bool,
    "files": files the manifest lists, "bytes": bytes hashed,
    "format_version": 2 (bundles only), "provenance": bool,
    "signatures": [{key_type, fingerprint, namespace, hash, status, principals}],
    "trusted": true when --allowed-signers was met,
    "differences": ["P: missing" | "P: not in manifest" |
                    "P: size N, manifest says M" | "P: sha256 X, manifest says Y", ...],
    "error": message when the check stopped early (omitted otherwise)}

Example:
   quantpack check vit-int8.tar.zst
   quantpack check vit-int8/ --json
   quantpack check vit-int8.tar.zst --allowed-signers allowed_signers --identity ci@example.com

` + exitCodeHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "max-bytes", Value: fmt.Sprintf("%dGiB", bundle.DefaultMaxBytes>>30), Usage: "bundles: refuse more declared unpacked `BYTES` than this"},
			maxRatioFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout"},
		}, trustFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("check takes one PATH, got %d arguments", c.NArg())
			}
			max, ratio, trust, err := bundleReadFlags(c)
			if err != nil {
				return err
			}
			path, err := resolveInput("check", "PATH", c.Args().First())
			if err != nil {
				return err
			}
			return runCheck(c.Context, checkOptions{Path: path, MaxBytes: max, MaxRatio: ratio, Trust: trust, JSON: c.Bool("json")}, os.Stdout)
		},
	}
}

type checkOptions struct {
	Path     string
	MaxBytes int64
	Trust    *bundle.TrustPolicy // require a signature by an allowed signer (nil: report only)
	MaxRatio float64
	JSON     bool
}

// checkJSON is check's --json output: the result and why it stopped.
type checkJSON struct {
	*bundle.CheckResult
	Error string `json:"error,omitempty"`
}

// runCheck verifies o.Path and reports on w. The error is the check's: it
// is nil only when everything matches.
func runCheck(ctx context.Context, o checkOptions, w io.Writer) error {
	bar := newProgress("check")
	res, err := bundle.Check(ctx, o.Path, bundle.UnpackOptions{MaxBytes: o.MaxBytes, MaxRatio: o.MaxRatio, Progress: bar.Set, Trust: o.Trust})
	bar.Done()
	if res == nil {
		return err
	}
	if o.JSON {
		out := checkJSON{CheckResult: res}
		if err != nil && !errors.Is(err, bundle.ErrMismatch) {
			out.Error = err.Error()
		}
		if perr := printJSON(w, out); perr != nil && err == nil {
			return perr
		}
		return err
	}
	for _, d := range res.Differences {
		fmt.Fprintf(w, "%s: %s\n", res.Path, d)
	}
	for _, l := range signatureLines(res.Path, res.Signatures) {
		fmt.Fprintln(w, l)
	}
	if err == nil {
		fmt.Fprintf(w, "%s: ok, %s, %s verified\n", res.Path, fileCount(res.Files), human.Bytes(res.Bytes))
	}
	return err
}
