package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
	"github.com/quantpack/quantpack/verify"
)

// Merge errors. A shard of another study and an incomplete set of shards
// are usage mistakes (exit 2): the fix is to pass the right directories.
var (
	// ErrForeignShard is a shard whose study ID, shard total or source
	// checkpoints differ from the first shard's.
	ErrForeignShard = fault.New(fault.Usage, "study merge: shard of a different study")
	// ErrMissingShard is a set of shards with one or more indexes absent,
	// or a shard that lacks cells it was dealt.
	ErrMissingShard = fault.New(fault.Usage, "study merge: shards missing")
	// ErrNotShard is a directory without a shard's report.json.
	ErrNotShard = fault.New(fault.Invalid, "study merge: not a study shard")
)

// Merge combines the report directories of a sharded study (study --shard
// I/N, one per shard) into the report, heatmaps and recommendation a single
// run would have written, in out. It refuses shards of different studies
// (settings, constraints, model list or source sha256 sums differ) and
// names any shard that is missing. Shards measured on different machines
// are merged, and the report lists the machines: each speedup is still a
// ratio within one run, but absolute latencies across rows are not
// comparable. Merge measures nothing and opens no model.
func Merge(dirs []string, out string) (*Report, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%w: no shard directories given", ErrOption)
	}
	if out == "" {
		return nil, fmt.Errorf("%w: -o REPORTDIR is required", ErrOption)
	}
	var shards []*Report
	for _, d := range dirs {
		r, err := ReadReport(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNotShard, d, FileJSON)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNotShard, d, err)
		}
		if r.Format != ReportFormat || r.Shard == nil {
			return nil, fmt.Errorf("%w: %s is not a shard's report (format %q; run study --shard I/N)", ErrNotShard, d, r.Format)
		}
		if err := checkShardReport(r); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNotShard, d, err)
		}
		shards = append(shards, r)
	}
	first := shards[0]
	byIndex := map[int]string{}
	for i, r := range shards {
		switch {
		case r.StudyID != first.StudyID || len(r.Models) != len(first.Models) || !sameFiles(r.Models, first.Models):
			return nil, fmt.Errorf("%w: %s is study %.12s, %s is study %.12s (%s)", ErrForeignShard, dirs[i], r.StudyID,
				dirs[0], first.StudyID, studyDiff(first, r))
		case r.Shard.Total != first.Shard.Total:
			return nil, fmt.Errorf("%w: %s is shard %s, %s is shard %s: different totals", ErrForeignShard, dirs[i], r.Shard, dirs[0], first.Shard)
		}
		if prev, dup := byIndex[r.Shard.Index]; dup {
			return nil, fmt.Errorf("%w: %s and %s are both shard %s", ErrOption, prev, dirs[i], r.Shard)
		}
		byIndex[r.Shard.Index] = dirs[i]
	}
	plan := assign(first.Models, first.Settings.Precisions, first.Shard.Total)
	var missing []string
	for i, cells := range plan {
		if _, ok := byIndex[i+1]; !ok && len(cells) > 0 {
			missing = append(missing, fmt.Sprintf("shard %d/%d (cells %s)", i+1, first.Shard.Total, strings.Join(cellNames(first.Models, cells), ", ")))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingShard, strings.Join(missing, "; "))
	}

	m := &Report{Format: ReportFormat, ToolVersion: version.Version, Created: time.Now().UTC().Format(time.RFC3339),
		Settings: first.Settings, Constraints: first.Constraints, Provenance: first.Provenance, StudyID: first.StudyID,
		Models: slices.Clone(first.Models)}
	machines := map[string]bool{}
	for i, r := range shards {
		if err := mergeSources(m.Models, r.Models, dirs[i]); err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, c := range r.Cells {
			have[c.Model+"/"+c.Precision] = true
		}
		var lack []string
		for _, name := range r.Shard.Cells {
			if !have[name] {
				lack = append(lack, name)
			}
		}
		if len(lack) > 0 {
			return nil, fmt.Errorf("%w: %s (shard %s) lacks cells %s: run that shard again", ErrMissingShard, dirs[i], r.Shard, strings.Join(lack, ", "))
		}
		m.Cells = append(m.Cells, r.Cells...)
		for _, sv := range r.Sensitivity {
			// The report lives in the shard's directory: link it from out.
			if rel, err := filepath.Rel(out, filepath.Join(dirs[i], filepath.FromSlash(sv.Dir))); err == nil {
				sv.Dir = filepath.ToSlash(rel)
			}
			m.Sensitivity = append(m.Sensitivity, sv)
		}
		machines[machineName(r.Provenance)] = true
	}
	if len(machines) > 1 {
		for k := range machines {
			m.Machines = append(m.Machines, k)
		}
		slices.Sort(m.Machines)
	}
	rank := map[string]int{}
	for i, mi := range m.Models {
		rank[mi.Name] = i
	}
	slices.SortStableFunc(m.Sensitivity, func(a, b SensitivitySummary) int { return rank[a.Model] - rank[b.Model] })
	finalize(m)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if err := writeReports(out, m); err != nil {
		return nil, err
	}
	return m, nil
}

// checkShardReport rejects a report.json that a shard cannot have written
// (hand-edited or corrupt), before anything indexes into it.
func checkShardReport(r *Report) error {
	sh := r.Shard
	switch {
	case sh.Total < 1 || sh.Total > maxShards || sh.Index < 1 || sh.Index > sh.Total:
		return fmt.Errorf("shard %s out of range", sh.Shard)
	case len(r.Settings.Precisions) == 0 || len(r.Settings.BatchSizes) == 0:
		return fmt.Errorf("no precisions or batch sizes in its settings")
	case len(r.Models) == 0:
		return fmt.Errorf("no models")
	}
	names := map[string]bool{}
	for _, m := range r.Models {
		if m.Name == "" || names[m.Name] {
			return fmt.Errorf("model name %q empty or repeated", m.Name)
		}
		names[m.Name] = true
	}
	precs := map[string]bool{}
	for _, p := range r.Settings.Precisions {
		precs[p] = true
	}
	for i, c := range r.Cells {
		if c == nil || !names[c.Model] || !precs[c.Precision] {
			return fmt.Errorf("cell %d is not one of the study's models and precisions", i)
		}
	}
	return nil
}

// sameFiles reports whether two model lists name the same files per model.
func sameFiles(a, b []ModelInfo) bool {
	return slices.EqualFunc(a, b, func(x, y ModelInfo) bool {
		return x.Name == y.Name && slices.EqualFunc(x.Sources, y.Sources, func(p, q manifest.File) bool { return p.Path == q.Path && p.Size == q.Size })
	})
}

// mergeSources fills dst's source sha256 sums from a shard's models (each
// shard hashes only the checkpoints it used) and refuses a sum that differs
// from another shard's: the shards read different checkpoints.
func mergeSources(dst, src []ModelInfo, dir string) error {
	for i := range dst {
		for j := range dst[i].Sources {
			got := src[i].Sources[j].SHA256
			if got == "" {
				continue
			}
			have := &dst[i].Sources[j]
			if have.SHA256 != "" && have.SHA256 != got {
				return fmt.Errorf("%w: %s read %s/%s with sha256 %.12s, another shard %.12s: the checkpoints differ",
					ErrForeignShard, dir, dst[i].Name, have.Path, got, have.SHA256)
			}
			have.SHA256 = got
		}
	}
	return nil
}

// studyDiff says in words why two reports are different studies.
func studyDiff(a, b *Report) string {
	var d []string
	if a.ToolVersion != b.ToolVersion {
		d = append(d, fmt.Sprintf("quantpack %s vs %s", a.ToolVersion, b.ToolVersion))
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	if js(a.Settings) != js(b.Settings) {
		d = append(d, fmt.Sprintf("settings %s vs %s", js(a.Settings), js(b.Settings)))
	}
	if js(a.Constraints) != js(b.Constraints) {
		d = append(d, "recommendation constraints differ")
	}
	if !sameFiles(a.Models, b.Models) {
		d = append(d, "the models (names, files or sizes) differ")
	}
	if len(d) == 0 {
		return "their settings differ"
	}
	return strings.Join(d, "; ")
}

// machineName identifies a machine in a merged report.
func machineName(p verify.Provenance) string {
	return fmt.Sprintf("%s, %d logical CPUs, %s/%s, flags %s", p.CPUModel, p.LogicalCPUs, p.OS, p.Arch, strings.Join(p.CPUFlags, " "))
}
