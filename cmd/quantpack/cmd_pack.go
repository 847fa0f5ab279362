package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/formats/bundle"
	"github.com/quantpack/quantpack/internal/human"
)

func init() { register(newPackCommand()) }

func newPackCommand() *cli.Command {
	levels := make([]string, len(bundle.Levels))
	for i, l := range bundle.Levels {
		levels[i] = string(l)
	}
	return &cli.Command{
		Name:      "pack",
		Usage:     "pack an artifact directory into one deployable .tar.zst bundle",
		ArgsUsage: "DIR -o FILE.tar.zst",
		Description: `Writes DIR as a tar archive compressed with zstd: quantpack.json first, then
every file in byte order of its path. The same DIR always gives the same bytes
(fixed order, mode 0644, owner 0, time 0); the bundle ends with a zstd
skippable frame holding the sha256 of the bytes before it. Any tar with zstd
support extracts it; "quantpack unpack" also verifies it.

Every bundle carries quantpack.provenance.json (second entry): an in-toto
Statement v1 with a SLSA provenance v1 predicate listing quantpack.json and
every file with its sha256, the source checkpoint's files, the recipe (every
option in quantpack.json), quantpack's version and commit, and the gates and
measured values of any verify/study report packed with the artifact.
--sign-key signs it (OpenSSH SSHSIG, namespace "quantpack"); "quantpack sign"
adds signatures later. See docs/bundle.md for the trust model.

The manifest: when DIR/quantpack.json lists exactly the files present, with
their sizes and sha256, it is stored byte-for-byte. Otherwise (a file added
after convert, such as verify.json, a file changed, or no manifest at all)
pack stores a regenerated one: the same JSON object with "files" recomputed
and "files_rewritten_by": "pack" added (with "tool_version" when DIR had no
manifest). unpack then yields that manifest. DIR itself is never modified.
A file the manifest lists that is missing, of another size or another sha256
is refused (exit 3, as check reports it): pack never packs a corrupted
artifact under fresh hashes. --rehash packs the files as they are, with a
regenerated manifest.

Each file is read once, hashed while it streams into the archive and checked
against the manifest; only when a listed file turns out to have changed
without changing size does pack start over, hashing first. Memory does not
grow with the artifact: about 40 MiB on two cores, under 100 MiB on many. FILE is written to a
temporary name beside it and renamed when complete; it may not be inside DIR,
and an existing FILE is refused unless --force.

--level picks the zstd setting. auto (default) uses fastest+lit for fp16,
bf16, int8 and fp32 artifacts (entropy-coding literals is what compresses
weights) and fastest for nf4 and int4 (packed 4-bit codes do not compress);
see docs/bundle.md for the measurements.

With --json, prints one object:
   {"bundle": FILE, "sha256": hex of FILE, "bytes": size of FILE,
    "raw_bytes": files + manifest uncompressed, "ratio": bytes/raw_bytes,
    "files": entries incl. the manifest, "level": name used,
    "manifest": "stored"|"rewritten", "format_version": 2,
    "signatures": [{key_type, fingerprint, namespace, hash, status}]}

Example:
   quantpack convert vit -o vit-int8 --precision int8
   quantpack pack vit-int8 -o vit-int8.tar.zst
   quantpack pack vit-int8 -o vit-int8.tar.zst --level best --json
   quantpack pack vit-int8 -o vit-int8.tar.zst --sign-key ~/.ssh/id_ed25519

` + exitCodeHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle `FILE` to write (refused if it exists, unless --force)", Required: true},
			&cli.StringFlag{Name: "level", Value: string(bundle.LevelAuto), Usage: "zstd `LEVEL`: " + strings.Join(levels, ", ")},
			&cli.BoolFlag{Name: "force", Usage: "replace FILE when it exists (a directory is never replaced)"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the provenance with this OpenSSH private key `FILE` (or a .pub whose key ssh-agent holds)"},
			&cli.BoolFlag{Name: "rehash", Usage: "pack files that differ from quantpack.json as they are (regenerates the manifest)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("pack takes one DIR, got %d arguments", c.NArg())
			}
			dir, err := resolveInput("pack", "DIR", c.Args().First())
			if err != nil {
				return err
			}
			return runPack(c.Context, packOptions{
				Dir: dir, Output: outputPath(c), Level: c.String("level"), Force: c.Bool("force"), JSON: c.Bool("json"),
				SignKey: c.String("sign-key"), Rehash: c.Bool("rehash"),
			}, os.Stdout)
		},
	}
}

type packOptions struct {
	Dir, Output, Level string
	SignKey            string // OpenSSH key to sign with ("" : unsigned)
	Force, JSON        bool
	Rehash             bool
}

// runPack packs o.Dir into o.Output and reports on w.
func runPack(ctx context.Context, o packOptions, w io.Writer) error {
	level, err := bundle.ParseLevel(o.Level)
	if err != nil {
		return usagef("%v", err)
	}
	if fi, err := os.Stat(o.Dir); err != nil {
		return err
	} else if !fi.IsDir() {
		return usagef("pack: %s is not a directory", o.Dir)
	}
	popts := bundle.PackOptions{Level: level}
	if o.SignKey != "" {
		if popts.Signer, err = loadSigner(o.SignKey); err != nil {
			return err
		}
	}
	bar := newProgress("pack")
	popts.Progress, popts.Rehash, popts.Overwrite = bar.Set, o.Rehash, o.Force
	res, err := bundle.Pack(ctx, o.Dir, o.Output, popts)
	bar.Done()
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(w, res)
	}
	_, err = fmt.Fprintf(w, "%s → %s: %s, %s → %s (%.3f×), level %s, manifest %s\nsha256 %s\n",
		o.Dir, res.Bundle, fileCount(listedFiles(res.Files, res.FormatVersion >= 2)), human.Bytes(res.RawBytes), human.Bytes(res.Bytes), res.Ratio,
		res.Level, res.Manifest, res.SHA256)
	for _, s := range res.Signatures {
		fmt.Fprintf(w, "signed: %s %s (namespace %s)\n", s.KeyType, s.Fingerprint, s.Namespace)
	}
	return err
}
