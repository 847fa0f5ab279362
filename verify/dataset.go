package verify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/quantpack/quantpack/internal/hfconfig"
)

// Sample is one image of a dataset.
type Sample struct {
	Path string `json:"path"`
	// Label is the class index, -1 when the image has none (an image at the
	// top level of the folder, or a synthetic input).
	Label int `json:"label"`
	// Folder is the class folder's name as it is on disk.
	Folder string `json:"folder,omitempty"`
}

// Dataset is an ImageFolder: DIR/<class>/**/<image>.
type Dataset struct {
	Root    string
	Samples []Sample
	// Labels names each class index: the model's id2label, a labels file,
	// or (with neither) the sorted folder names.
	Labels []string
	// FolderLabel maps each class folder to the index it was matched to.
	FolderLabel map[string]int
}

// imageExts are the file name endings ImageFolder collects (compared
// without case), the formats DecodeImage reads.
var imageExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".gif": true,
	".tif": true, ".tiff": true, ".webp": true,
}

func isImageName(name string) bool { return imageExts[strings.ToLower(filepath.Ext(name))] }

// ImageFolder lists dir in torchvision's ImageFolder layout: every
// subdirectory is a class, every image under it (recursively, in sorted
// order) a sample of that class. Images directly in dir are samples with
// no label (Label -1), so a flat folder of images works for agreement
// metrics. Hidden entries (".name") are skipped; so are files that are not
// images by their extension. Nothing is decoded here: a file that fails to
// decode is skipped and counted by the Loader.
//
// labels, when not nil, names the model's classes (from LoadID2Label or
// ReadLabelsFile) and each folder is matched to one of them by
// MatchLabel's rule; a folder that matches none or several is an error
// (ErrBadDataset) naming it. With labels nil the classes are the sorted
// folder names, indexed from 0 as torchvision does.
func ImageFolder(dir string, labels []string) (*Dataset, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{Root: dir, FolderLabel: map[string]int{}}
	var folders []string
	for _, e := range entries { // ReadDir returns entries sorted by name
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() {
			folders = append(folders, e.Name())
		} else if e.Type().IsRegular() && isImageName(e.Name()) {
			ds.Samples = append(ds.Samples, Sample{Path: filepath.Join(dir, e.Name()), Label: -1})
		}
	}
	if labels == nil {
		ds.Labels = folders
		for i, f := range folders {
			ds.FolderLabel[f] = i
		}
	} else {
		ds.Labels = labels
		m := newLabelMatcher(labels)
		for _, f := range folders {
			idx, err := m.match(f)
			if err != nil {
				return nil, &ConfigError{Path: filepath.Join(dir, f), Kind: ErrBadDataset, Err: err}
			}
			ds.FolderLabel[f] = idx
		}
	}
	for _, f := range folders {
		label := ds.FolderLabel[f]
		err := filepath.WalkDir(filepath.Join(dir, f), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && path != filepath.Join(dir, f) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && isImageName(d.Name()) {
				ds.Samples = append(ds.Samples, Sample{Path: path, Label: label, Folder: f})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(ds.Samples) == 0 {
		return nil, &ConfigError{Path: dir, Kind: ErrBadDataset, Err: errors.New("no image files (by extension) in the folder or its class folders")}
	}
	return ds, nil
}

// NormalizeLabel is the form in which folder names and class names are
// compared: lower case, '_' and '-' read as spaces, runs of spaces as one,
// no leading or trailing space. "Tabby_Cat" and "tabby cat" are equal.
func NormalizeLabel(s string) string {
	s = strings.ToLower(s)
	s = strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

var wnidRe = regexp.MustCompile(`^n[0-9]{8}$`)

type labelMatcher struct {
	n    int
	full map[string][]int // the whole normalized name
	syn  map[string][]int // each comma-separated synonym, and WordNet ids
}

func newLabelMatcher(labels []string) *labelMatcher {
	m := &labelMatcher{n: len(labels), full: map[string][]int{}, syn: map[string][]int{}}
	add := func(mp map[string][]int, k string, i int) {
		if k == "" {
			return
		}
		if l := mp[k]; len(l) > 0 && l[len(l)-1] == i {
			return
		}
		mp[k] = append(mp[k], i)
	}
	for i, l := range labels {
		name := l
		if id, rest, ok := strings.Cut(l, " "); ok && wnidRe.MatchString(id) {
			add(m.syn, id, i)
			name = rest
		}
		add(m.full, NormalizeLabel(name), i)
		for _, s := range strings.Split(name, ",") {
			add(m.syn, NormalizeLabel(s), i)
		}
	}
	return m
}

// MatchLabel finds the class index a folder name stands for, by the first
// rule that gives an answer:
//  1. the normalized folder name equals a whole normalized class name
//     ("tabby, tabby cat" is matched by "Tabby,_tabby_cat");
//  2. it equals one comma-separated synonym of a class name ("tabby cat"
//     or "tabby" for "tabby, tabby cat"), or a WordNet id that a labels
//     file line starts with ("n02123045 tabby, tabby cat");
//  3. it is a decimal class index in range ("281").
//
// A rule that finds several classes is an error listing them (ImageNet's
// "crane" is both class 134 and class 517): rename the folder to a longer
// name. No match at all is an error too.
func MatchLabel(folder string, labels []string) (int, error) {
	return newLabelMatcher(labels).match(folder)
}

func (m *labelMatcher) match(folder string) (int, error) {
	k := NormalizeLabel(folder)
	for _, mp := range []map[string][]int{m.full, m.syn} {
		switch l := mp[k]; len(l) {
		case 0:
		case 1:
			return l[0], nil
		default:
			return -1, fmt.Errorf("folder %q matches classes %v; use a name that only one of them has", folder, l)
		}
	}
	if i, err := strconv.Atoi(folder); err == nil && i >= 0 && i < m.n && strconv.Itoa(i) == folder {
		return i, nil
	}
	return -1, fmt.Errorf("folder %q matches no class name (%d classes); name folders after id2label entries, a synonym, or the class index", folder, m.n)
}

// maxLabelsBytes caps a labels file (ImageNet-21k's names are ~1 MiB).
const maxLabelsBytes = 16 << 20

// ReadLabelsFile reads class names, one per line in class-index order
// (line 1 is class 0). A line may start with a WordNet id, as ImageNet's
// LOC_synset_mapping.txt does ("n01440764 tench, Tinca tinca"), which
// folders may then be named after. Trailing empty lines are ignored; an
// empty line before the last name is an error, since it would shift every
// index after it.
func ReadLabelsFile(path string) ([]string, error) {
	data, err := hfconfig.ReadCapped(path, maxLabelsBytes)
	if err != nil {
		return nil, err
	}
	return parseLabels(path, data)
}

func parseLabels(path string, data []byte) ([]string, error) {
	var labels []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLabelsBytes)
	blank := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			blank++
			continue
		}
		if blank > 0 {
			return nil, &ConfigError{Path: path, Key: fmt.Sprintf("line %d", len(labels)+blank), Kind: ErrBadDataset,
				Err: errors.New("empty line between class names")}
		}
		labels = append(labels, line)
	}
	if err := sc.Err(); err != nil {
		return nil, &ConfigError{Path: path, Kind: ErrBadDataset, Err: err}
	}
	if len(labels) == 0 {
		return nil, &ConfigError{Path: path, Kind: ErrBadDataset, Err: errors.New("no class names")}
	}
	return labels, nil
}

// LoadID2Label reads config.json's id2label as a slice indexed by class.
// The keys must be exactly 0..n-1.
func LoadID2Label(configPath string) ([]string, error) {
	mc, err := hfconfig.LoadFile(configPath)
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if raw, ok := mc.Raw["id2label"]; ok {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, &ConfigError{Path: configPath, Key: "id2label", Kind: ErrBadDataset, Err: err}
		}
	}
	return id2labelSlice(configPath, m)
}

func id2labelSlice(path string, m map[string]string) ([]string, error) {
	if len(m) == 0 {
		return nil, &ConfigError{Path: path, Key: "id2label", Kind: ErrBadDataset, Err: errors.New("missing or empty")}
	}
	out := make([]string, len(m))
	seen := make([]bool, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(m) || seen[i] {
			return nil, &ConfigError{Path: path, Key: "id2label", Kind: ErrBadDataset,
				Err: fmt.Errorf("key %q: want each of 0..%d once", k, len(m)-1)}
		}
		seen[i] = true
		out[i] = m[k]
	}
	return out, nil
}
