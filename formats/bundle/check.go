package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/quantpack/quantpack/internal/manifest"
)

// CheckResult reports how a bundle or an artifact directory compares with
// its manifest; it is also the JSON that `quantpack check --json` prints.
type CheckResult struct {
	Path          string `json:"path"`
	Kind          string `json:"kind"` // "bundle" or "dir"
	OK            bool   `json:"ok"`
	Files         int    `json:"files"`                    // files the manifest lists
	Bytes         int64  `json:"bytes"`                    // bytes hashed
	FormatVersion int    `json:"format_version,omitempty"` // bundles only
	// Provenance: the bundle (or directory) carries a provenance statement
	// that matches its manifest and files.
	Provenance bool `json:"provenance"`
	// Signatures lists a bundle's signatures and what was found of each;
	// Trusted is true when an allowed signer's valid signature was found.
	Signatures []SignatureInfo `json:"signatures"`
	Trusted    bool            `json:"trusted"`
	// Differences has one line per file that differs, worded as
	// manifest.Diff words them: "P: missing", "P: not in manifest",
	// "P: size N, manifest says M", "P: sha256 X, manifest says Y".
	Differences []string `json:"differences"`
}

// Check verifies path, a bundle or an artifact directory, against its
// manifest. A directory is hashed file by file (manifest.Scan) and compared
// with its quantpack.json (manifest.Diff); a bundle is stream-verified
// without extracting anything. Differences are collected and reported
// together, with an error wrapping ErrMismatch; a bundle whose structure is
// unsafe or corrupt (see Unpack) stops the check with that error. The result
// is non-nil whenever path could be read, so that it can be printed.
func Check(ctx context.Context, path string, opts UnpackOptions) (*CheckResult, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return checkDir(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if opts.Progress != nil {
		fn := opts.Progress
		opts.Progress = func(done, _ int64) { fn(done, fi.Size()) }
	}
	opts.size = fi.Size()
	return verify(ctx, f, path, opts)
}

// Verify stream-verifies a bundle read from r (see Check); name is used in
// errors and in the result.
func Verify(ctx context.Context, r io.Reader, name string, opts UnpackOptions) (*CheckResult, error) {
	return verify(ctx, r, name, opts)
}

// signState is what Sign needs of a verified bundle.
type signState struct {
	prov   []byte
	sigs   [][]byte
	sigLen int
}

func verify(ctx context.Context, r io.Reader, name string, opts UnpackOptions) (*CheckResult, error) {
	res, _, err := verifyState(ctx, r, name, opts)
	return res, err
}

func verifyState(ctx context.Context, r io.Reader, name string, opts UnpackOptions) (*CheckResult, *signState, error) {
	res := &CheckResult{Path: name, Kind: "bundle", Differences: []string{}, Signatures: []SignatureInfo{}}
	rd, err := openReader(ctx, r, name, opts, &progress{fn: opts.Progress})
	if err != nil {
		return res, nil, err
	}
	defer rd.close()
	res.FormatVersion = rd.version
	res.Files = len(rd.man.files)
	res.Provenance = rd.prov != nil
	var first error // the first difference, as a located error
	note := func(line string, err error) {
		res.Differences = append(res.Differences, line)
		if first == nil {
			first = err
		}
	}
	h := sha256.New()
	for {
		hdr, err := rd.nextHeader()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, nil, err
		}
		want, listed := rd.man.byPath[hdr.Name]
		if !listed {
			note(hdr.Name+": not in manifest", rd.fail(ErrNotInManifest, ""))
		}
		h.Reset()
		if err := rd.copyEntry(h, hdr.Size); err != nil {
			return res, nil, err
		}
		res.Bytes += hdr.Size
		if !listed {
			continue
		}
		got := hex.EncodeToString(h.Sum(nil))
		switch {
		case hdr.Size != want.Size:
			note(fmt.Sprintf("%s: size %d, manifest says %d", hdr.Name, hdr.Size, want.Size),
				rd.fail(ErrSize, "entry has %d bytes, manifest declares %d", hdr.Size, want.Size))
		case got != want.SHA256:
			note(fmt.Sprintf("%s: sha256 %s, manifest says %s", hdr.Name, got, want.SHA256),
				rd.fail(ErrHash, "got %s, manifest says %s", got, want.SHA256))
		}
	}
	for _, f := range rd.man.files {
		if !rd.seen[f.Path] {
			note(f.Path+": missing", &EntryError{Bundle: name, Index: -1, Name: f.Path, Offset: rd.raw.n, Err: ErrMissing})
		}
	}
	sigs, serr := rd.judge(opts.Trust)
	if sigs != nil {
		res.Signatures = sigs
	}
	res.Trusted = serr == nil && opts.Trust != nil
	res, err = finishCheck(res, first)
	if err == nil && serr != nil {
		// Files intact, signature refused: the error is the signature's.
		res.OK, err = false, serr
	}
	return res, &signState{prov: rd.prov, sigs: rd.sigs, sigLen: rd.sigLen}, err
}

// checkDir compares an artifact directory with its quantpack.json.
func checkDir(dir string) (*CheckResult, error) {
	res := &CheckResult{Path: dir, Kind: "dir", Differences: []string{}, Signatures: []SignatureInfo{}}
	raw, want, _, err := readDirManifest(dir)
	if err != nil {
		return res, err
	}
	if raw == nil {
		return res, &FileError{Path: filepath.Join(dir, manifest.Name), Err: ErrMissing, Detail: "no manifest to check against"}
	}
	res.Files = len(want)
	have, err := manifest.Scan(dir)
	if err != nil {
		return res, err
	}
	for _, f := range have {
		res.Bytes += f.Size
	}
	res.Differences = append(res.Differences, manifest.Diff(want, have)...)
	if prov, err := readProvenanceFile(dir); err != nil {
		return res, err
	} else if prov != nil {
		m, _ := parseManifest(raw)
		if m == nil {
			res.Differences = append(res.Differences, manifest.ProvenanceName+": manifest does not parse")
		} else if why := checkProvenance(prov, raw, m); why != "" {
			res.Differences = append(res.Differences, manifest.ProvenanceName+": "+why)
		} else {
			res.Provenance = true
		}
	}
	var first error
	if len(res.Differences) > 0 {
		// The mismatchError around it already says ErrMismatch: the
		// first difference is only located here, not classed again.
		first = fmt.Errorf("%s: %s", dir, res.Differences[0])
	}
	return finishCheck(res, first)
}

func finishCheck(res *CheckResult, first error) (*CheckResult, error) {
	res.OK = len(res.Differences) == 0
	if res.OK {
		return res, nil
	}
	return res, &mismatchError{n: len(res.Differences), first: first}
}

// mismatchError is Check's error: it is ErrMismatch and also the first
// difference's own sentinel (ErrHash, ErrSize, ...), located.
type mismatchError struct {
	n     int
	first error
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("%v: %d difference(s), first: %v", ErrMismatch, e.n, e.first)
}

func (e *mismatchError) Unwrap() []error { return []error{ErrMismatch, e.first} }

// readProvenanceFile returns dir's quantpack.provenance.json (left there by
// unpack), or nil when there is none.
func readProvenanceFile(dir string) ([]byte, error) {
	p := filepath.Join(dir, ProvenanceName)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &FileError{Path: p, Err: ErrNotRegular, Detail: fi.Mode().Type().String()}
	}
	if fi.Size() > maxProvenanceSize {
		return nil, &FileError{Path: p, Err: ErrTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", fi.Size(), maxProvenanceSize)}
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxProvenanceSize))
}
