package bundle

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/quantpack/quantpack/internal/manifest"
)

// bundleManifest is the parsed and validated first entry of a bundle.
type bundleManifest struct {
	files     []manifest.File
	byPath    map[string]manifest.File
	total     int64 // sum of declared sizes
	rewritten bool  // pack regenerated the file list ("files_rewritten_by")
	precision string
}

// rewrittenKey marks a manifest whose "files" member pack recomputed.
const rewrittenKey = "files_rewritten_by"

// parseManifest parses manifest bytes and checks every file record: a safe
// relative name that is not the manifest itself, no duplicates, no name that
// is both a file and a directory, a size ≥ 0, a 64-digit lowercase hex
// sha256, at most MaxEntries records, a total that does not overflow.
// It returns the problem as a detail string for the caller to wrap.
func parseManifest(b []byte) (*bundleManifest, string) {
	files, doc, err := manifest.ParseFiles(manifest.Name, b)
	if err != nil {
		return nil, err.Error()
	}
	if _, ok := doc["files"]; !ok {
		return nil, `no "files" member`
	}
	if len(files) > MaxEntries {
		return nil, fmt.Sprintf("%d files, limit %d", len(files), MaxEntries)
	}
	m := &bundleManifest{files: files, byPath: make(map[string]manifest.File, len(files))}
	dirs := map[string]bool{}
	for i, f := range files {
		if why := checkName(f.Path); why != "" {
			return nil, fmt.Sprintf("files[%d] %q: %s", i, f.Path, why)
		}
		if f.Path == manifest.Name {
			return nil, fmt.Sprintf("files[%d] lists the manifest itself", i)
		}
		if f.Path == manifest.ProvenanceName {
			return nil, fmt.Sprintf("files[%d] lists the provenance, which is not a file of the artifact", i)
		}
		if _, dup := m.byPath[f.Path]; dup {
			return nil, fmt.Sprintf("files[%d] %q listed twice", i, f.Path)
		}
		if f.Size < 0 {
			return nil, fmt.Sprintf("files[%d] %q: negative size %d", i, f.Path, f.Size)
		}
		if !isHexSHA256(f.SHA256) {
			return nil, fmt.Sprintf("files[%d] %q: sha256 %q is not 64 lowercase hex digits", i, f.Path, f.SHA256)
		}
		if m.total > math.MaxInt64-f.Size {
			return nil, "total size overflows"
		}
		m.total += f.Size
		m.byPath[f.Path] = f
		for d := f.Path; ; {
			j := strings.LastIndexByte(d, '/')
			if j < 0 {
				break
			}
			d = d[:j]
			dirs[d] = true
		}
	}
	for _, f := range files {
		if dirs[f.Path] {
			return nil, fmt.Sprintf("%q is both a file and a directory", f.Path)
		}
	}
	if dirs[manifest.Name] {
		return nil, fmt.Sprintf("%q used as a directory", manifest.Name)
	}
	_, m.rewritten = doc[rewrittenKey]
	if raw, ok := doc["precision"]; ok {
		json.Unmarshal(raw, &m.precision) // not a string: no precision
	}
	return m, ""
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// regenerate returns the manifest pack stores when the directory's own does
// not list exactly the files present: the original object (or, with none,
// one holding tool_version) with "files" replaced and "files_rewritten_by":
// "pack" added. Keys come out sorted, so the bytes are deterministic.
func regenerate(doc map[string]json.RawMessage, files []manifest.File, toolVersion string) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(doc)+2)
	for k, v := range doc {
		out[k] = v
	}
	if doc == nil {
		v, _ := json.Marshal(toolVersion)
		out["tool_version"] = v
	}
	if files == nil {
		files = []manifest.File{}
	}
	fl, err := json.Marshal(files)
	if err != nil {
		return nil, err
	}
	out["files"] = fl
	out[rewrittenKey] = json.RawMessage(`"pack"`)
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
