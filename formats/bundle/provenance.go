package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
)

// ProvenanceName is the bundle's second entry (format version 2): an in-toto
// Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
// whose predicate is SLSA Provenance v1 (https://slsa.dev/spec/v1.0/provenance).
// Its subjects are quantpack.json and every file of the bundle with their
// sha256, so a signature over these bytes covers the whole payload. unpack
// writes it beside quantpack.json; pack regenerates it, so a directory that
// holds one from an earlier unpack packs to the same bytes.
const ProvenanceName = manifest.ProvenanceName

// In-toto and SLSA identifiers, fixed by those specifications.
const (
	statementType   = "https://in-toto.io/Statement/v1"
	slsaPredicate   = "https://slsa.dev/provenance/v1"
	buildTypeURI    = "https://github.com/quantpack/quantpack/blob/main/docs/bundle.md#provenance-v1"
	builderIDPrefix = "https://github.com/quantpack/quantpack/releases/"
	hubURLPrefix    = "https://huggingface.co/"
)

// maxProvenanceSize caps the provenance entry, read into memory: subjects
// for MaxEntries files (~130 bytes each) plus the recipe and reports.
const maxProvenanceSize = MaxManifestSize + 4<<20

// Statement is an in-toto Statement v1. Field order is the specification's,
// and encoding/json writes struct fields in order and map keys sorted, so the
// same inputs always give the same bytes.
type Statement struct {
	Type          string     `json:"_type"`
	Subject       []Resource `json:"subject"`
	PredicateType string     `json:"predicateType"`
	Predicate     Provenance `json:"predicate"`
}

// Resource is an in-toto ResourceDescriptor (subjects, dependencies and
// byproducts).
type Resource struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// Provenance is the SLSA Provenance v1 predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition says what was built and from what.
type BuildDefinition struct {
	BuildType string `json:"buildType"`
	// ExternalParameters is the recipe: every member of the artifact's
	// quantpack.json that describes how it was made (precision, scheme,
	// method, block size, int8 mode, opset, graph form, architecture...),
	// i.e. all members except the derived lists and totals (see
	// derivedMembers), plus "source" (path or Hub repo, revision, commit).
	ExternalParameters map[string]json.RawMessage `json:"externalParameters"`
	// ResolvedDependencies are the source checkpoint's files with their
	// sha256 as the artifact's manifest recorded them.
	ResolvedDependencies []Resource `json:"resolvedDependencies,omitempty"`
}

// RunDetails says who built it; byproducts carry packed verify/study
// reports (gates and measured values).
type RunDetails struct {
	Builder    Builder    `json:"builder"`
	Byproducts []Resource `json:"byproducts,omitempty"`
}

// Builder identifies the quantpack that packed the bundle and the one that
// made the artifact.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version"`
}

// derivedMembers are the quantpack.json members that are results or lists,
// not the recipe; the files themselves are the subjects.
var derivedMembers = map[string]bool{
	"files": true, "tensors": true, "totals": true, "sizes": true, "ops": true, "inputs": true, "outputs": true,
	"sources": true, "source": true, "tool_version": true, rewrittenKey: true,
}

// reportMembers are what a packed verify or study report contributes to the
// provenance: where it ran and what its gates measured.
var reportMembers = []string{"format", "device", "ort_version", "gates", "speedup", "size_ratio", "agreement", "accuracy", "recommendation"}

// buildInfo returns quantpack's VCS revision from the binary's build
// information ("" when built without it, as `go test` binaries are).
var buildInfo = func() (revision string, modified bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return revision, modified
}

// reportFile is a packed JSON report's bytes, read by pack to record its
// gates; only top-level .json files are looked at.
type reportFile struct {
	path, sha256 string
	doc          map[string]json.RawMessage
}

// buildProvenance returns the provenance statement for a bundle whose
// manifest bytes are man and whose files (sorted, hashed) are files.
func buildProvenance(man []byte, files []manifest.File, reports []reportFile) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(man, &doc); err != nil {
		return nil, fmt.Errorf("bundle: provenance: manifest: %w", err)
	}
	st := Statement{Type: statementType, PredicateType: slsaPredicate}
	sum := sha256.Sum256(man)
	st.Subject = append(st.Subject, Resource{Name: manifest.Name, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}})
	for _, f := range files {
		st.Subject = append(st.Subject, Resource{Name: f.Path, Digest: map[string]string{"sha256": f.SHA256}})
	}

	params := map[string]json.RawMessage{}
	for k, v := range doc {
		if !derivedMembers[k] {
			params[k] = v
		}
	}
	src, deps := sourceOf(doc)
	if src != nil {
		b, err := json.Marshal(src)
		if err != nil {
			return nil, err
		}
		params["source"] = b
	}
	st.Predicate.BuildDefinition = BuildDefinition{BuildType: buildTypeURI, ExternalParameters: params, ResolvedDependencies: deps}

	ver := map[string]string{"quantpack": version.Version}
	if rev, modified := buildInfo(); rev != "" {
		if modified {
			rev += "+modified"
		}
		ver["quantpack_commit"] = rev
	}
	var made string
	if raw, ok := doc["tool_version"]; ok && json.Unmarshal(raw, &made) == nil && made != "" {
		ver["artifact_made_by"] = made
	}
	st.Predicate.RunDetails.Builder = Builder{ID: builderIDPrefix + version.Version, Version: ver}
	for _, r := range reports {
		ann := map[string]any{}
		for _, k := range reportMembers {
			if v, ok := r.doc[k]; ok {
				ann[k] = v
			}
		}
		st.Predicate.RunDetails.Byproducts = append(st.Predicate.RunDetails.Byproducts,
			Resource{Name: r.path, Digest: map[string]string{"sha256": r.sha256}, Annotations: ann})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sourceOf reads where the artifact came from in the two manifest shapes
// (convert: "sources": [files]; export: "source": {path, kind, repo,
// revision, commit, files}) and returns the source description and the
// source files as resolved dependencies, in path order.
func sourceOf(doc map[string]json.RawMessage) (map[string]any, []Resource) {
	type srcFile struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	var src struct {
		Path     string    `json:"path"`
		Kind     string    `json:"kind"`
		Repo     string    `json:"repo"`
		Revision string    `json:"revision"`
		Commit   string    `json:"commit"`
		Files    []srcFile `json:"files"`
	}
	var files []srcFile
	if raw, ok := doc["source"]; ok {
		if json.Unmarshal(raw, &src) != nil {
			// A source that is a plain string (a path) is still a source.
			var p string
			if json.Unmarshal(raw, &p) == nil {
				src.Path = p
			}
		}
		files = src.Files
	}
	if raw, ok := doc["sources"]; ok {
		var fs []srcFile
		if json.Unmarshal(raw, &fs) == nil {
			files = append(files, fs...)
		}
	}
	if src.Path == "" && src.Repo == "" && len(files) == 0 {
		return nil, nil
	}
	desc := map[string]any{}
	for k, v := range map[string]string{"path": src.Path, "kind": src.Kind, "repo": src.Repo, "revision": src.Revision, "commit": src.Commit} {
		if v != "" {
			desc[k] = v
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	var deps []Resource
	for _, f := range files {
		r := Resource{Name: f.Path, Annotations: map[string]any{"size": f.Size}}
		if isHexSHA256(f.SHA256) {
			r.Digest = map[string]string{"sha256": f.SHA256}
		}
		if src.Repo != "" && src.Commit != "" {
			r.URI = hubURLPrefix + src.Repo + "/resolve/" + src.Commit + "/" + f.Path
		}
		deps = append(deps, r)
	}
	return desc, deps
}

// checkProvenance parses a provenance entry and reports why it does not
// describe exactly this manifest and its files, or "" when it does. Since
// every file's sha256 is then checked against the manifest as it streams,
// a provenance that passes here vouches for every byte of the payload.
func checkProvenance(prov, man []byte, m *bundleManifest) string {
	var st Statement
	dec := json.NewDecoder(bytes.NewReader(prov))
	if err := dec.Decode(&st); err != nil {
		return fmt.Sprintf("not an in-toto statement: %v", err)
	}
	if st.Type != statementType {
		return fmt.Sprintf("_type %q, want %q", st.Type, statementType)
	}
	if st.PredicateType != slsaPredicate {
		return fmt.Sprintf("predicateType %q, want %q", st.PredicateType, slsaPredicate)
	}
	want := map[string]string{}
	sum := sha256.Sum256(man)
	want[manifest.Name] = hex.EncodeToString(sum[:])
	for _, f := range m.files {
		want[f.Path] = f.SHA256
	}
	seen := map[string]bool{}
	for _, s := range st.Subject {
		w, ok := want[s.Name]
		if !ok {
			return fmt.Sprintf("subject %q is not in the bundle", s.Name)
		}
		if seen[s.Name] {
			return fmt.Sprintf("subject %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if got := s.Digest["sha256"]; got != w {
			what := "manifest says"
			if s.Name == manifest.Name {
				what = "the manifest hashes to"
			}
			return fmt.Sprintf("subject %q sha256 %s, %s %s", s.Name, got, what, w)
		}
	}
	var missing []string
	for name := range want {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "no subject for " + strings.Join(missing, ", ")
	}
	return ""
}
