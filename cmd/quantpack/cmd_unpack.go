package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/formats/bundle"
	"github.com/quantpack/quantpack/internal/human"
)

func init() { register(newUnpackCommand()) }

func newUnpackCommand() *cli.Command {
	return &cli.Command{
		Name:      "unpack",
		Usage:     "verify and extract a bundle made by pack",
		ArgsUsage: "FILE -o DIR",
		Description: `Extracts FILE into DIR, which must not exist or be an empty directory
(missing parent directories are created). Everything is written into a
temporary directory beside DIR, and renamed to DIR only after every check
passed; on any failure nothing is left behind.

Checked while extracting: quantpack.json comes first and is well formed;
every other entry is a regular file (no links, devices, directories), with a
relative name without "..", listed in the manifest exactly once, with the
declared size and sha256; every listed file is present; the zstd stream is
intact to its end (frame checksum and the bundle's sha256 trailer). The
manifest's declared total may not exceed --max-bytes, nor (past 256 MiB)
--max-ratio times the bundle's size (a decompression bomb), nor the free
space of the file system DIR is on.

Every bundle of format 2 carries quantpack.provenance.json, written into DIR
beside quantpack.json. With --allowed-signers FILE (OpenSSH allowed_signers)
a valid signature by a listed key (principal matching --identity when given)
is required too; an unsigned bundle, one signed by another key, or one whose
signature covers other bytes is refused before anything is moved into DIR.

A refused bundle exits with status 3 and an error naming the entry (its
index and name) and the byte offset in the uncompressed tar stream.

With --json, prints one object:
   {"bundle": FILE, "dir": DIR, "files": files written incl. the manifest,
    "bytes": bytes written, "format_version": 2, "provenance": bool,
    "manifest_rewritten": true when pack regenerated quantpack.json,
    "signatures": [{key_type, fingerprint, namespace, hash, status, principals}]}

Example:
   quantpack unpack vit-int8.tar.zst -o /models/vit-int8
   quantpack unpack big.tar.zst -o out --max-bytes 200GiB
   quantpack unpack vit-int8.tar.zst -o /models/vit-int8 --allowed-signers /etc/quantpack/allowed_signers

` + exitCodeHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "`DIR` to create (absent or empty)", Required: true},
			&cli.StringFlag{Name: "max-bytes", Value: fmt.Sprintf("%dGiB", bundle.DefaultMaxBytes>>30), Usage: "refuse bundles that declare more unpacked `BYTES` (suffixes KB MB GB TB, KiB MiB GiB TiB)"},
			maxRatioFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout"},
		}, trustFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("unpack takes one FILE, got %d arguments", c.NArg())
			}
			max, ratio, trust, err := bundleReadFlags(c)
			if err != nil {
				return err
			}
			file, err := resolveInput("unpack", "FILE", c.Args().First())
			if err != nil {
				return err
			}
			return runUnpack(c.Context, unpackOptions{
				Bundle: file, Output: outputPath(c), MaxBytes: max, MaxRatio: ratio, Trust: trust, JSON: c.Bool("json"),
			}, os.Stdout)
		},
	}
}

type unpackOptions struct {
	Bundle, Output string
	MaxBytes       int64
	Trust          *bundle.TrustPolicy // require a signature by an allowed signer (nil: none required)
	MaxRatio       float64
	JSON           bool
}

// bundleReadFlags parses the limits and the trust policy that check and
// unpack share: --max-bytes, --max-ratio, --allowed-signers, --identity.
func bundleReadFlags(c *cli.Context) (maxBytes int64, ratio float64, trust *bundle.TrustPolicy, err error) {
	if maxBytes, err = parseBytes(c.String("max-bytes")); err != nil {
		return 0, 0, nil, usagef("--max-bytes: %v", err)
	}
	if ratio, err = maxRatio(c); err != nil {
		return 0, 0, nil, err
	}
	if trust, err = trustFromFlags(c); err != nil {
		return 0, 0, nil, err
	}
	return maxBytes, ratio, trust, nil
}

// maxRatioFlag returns unpack's and check's --max-ratio.
func maxRatioFlag() cli.Flag {
	return &cli.Float64Flag{Name: "max-ratio", Value: bundle.DefaultMaxRatio,
		Usage: "refuse bundles declaring more than `RATIO` unpacked bytes per bundle byte (past 256 MiB)"}
}

// maxRatio reads --max-ratio: a finite number ≥ 1.
func maxRatio(c *cli.Context) (float64, error) {
	r := c.Float64("max-ratio")
	if !(r >= 1 && r <= 1e18) {
		return 0, usagef("--max-ratio %g: want a number from 1 to 1e18", r)
	}
	return r, nil
}

// runUnpack extracts o.Bundle into o.Output and reports on w.
func runUnpack(ctx context.Context, o unpackOptions, w io.Writer) error {
	bar := newProgress("unpack")
	res, err := bundle.Unpack(ctx, o.Bundle, o.Output, bundle.UnpackOptions{MaxBytes: o.MaxBytes, MaxRatio: o.MaxRatio, Progress: bar.Set, Trust: o.Trust})
	bar.Done()
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(w, res)
	}
	note := ""
	if res.ManifestRewritten {
		note = " (manifest regenerated by pack)"
	}
	if o.Trust != nil {
		note += ", signature verified"
	}
	_, err = fmt.Fprintf(w, "%s → %s: %s, %s, all sha256 verified%s\n",
		res.Bundle, res.Dir, fileCount(listedFiles(res.Files, res.Provenance)), human.Bytes(res.Bytes), note)
	for _, l := range signatureLines(res.Bundle, res.Signatures) {
		fmt.Fprintln(w, l)
	}
	return err
}

// parseBytes reads a byte count: a plain integer or one with a decimal
// (KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB) suffix.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive byte count", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}
