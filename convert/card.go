package convert

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/human"
	"github.com/quantpack/quantpack/internal/manifest"
	"github.com/quantpack/quantpack/internal/version"
)

// CardName is the model card convert and export write beside the weights,
// so that an artifact can be uploaded to the Hub as it is.
const CardName = "README.md"

// maxCardBytes caps how much of a source model card is read for its front
// matter; real cards are a few kilobytes, the front matter comes first.
const maxCardBytes = 1 << 20

// card is a model card: Hugging Face YAML front matter (the metadata the
// Hub indexes, see https://huggingface.co/docs/hub/model-cards) and a short
// Markdown body. Everything in it comes from the manifest, so its bytes are
// as deterministic as the artifact's.
type card struct {
	baseModel string // Hub repo id; "" when the source was a local directory
	library   string // library_name
	precision string
	license   frontMatter
	title     string
	intro     string
	rows      [][2]string
	extra     string // Markdown after the table
}

func (c *card) bytes() []byte {
	var b bytes.Buffer
	b.WriteString("---\n")
	if c.baseModel != "" {
		fmt.Fprintf(&b, "base_model: %s\nbase_model_relation: quantized\n", yamlString(c.baseModel))
	}
	fmt.Fprintf(&b, "library_name: %s\n", c.library)
	for _, k := range []string{"license", "license_name", "license_link"} {
		if v, ok := c.license[k]; ok {
			fmt.Fprintf(&b, "%s: %s\n", k, yamlString(v))
		}
	}
	fmt.Fprintf(&b, "tags:\n- quantpack\n- %s\n---\n\n", c.precision)
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", c.title, c.intro)
	b.WriteString("| | |\n|---|---|\n")
	for _, r := range c.rows {
		fmt.Fprintf(&b, "| %s | %s |\n", r[0], strings.ReplaceAll(r[1], "|", `\|`))
	}
	if c.extra != "" {
		b.WriteString("\n" + c.extra)
	}
	fmt.Fprintf(&b, "\nEvery figure above is read from `quantpack.json`, which also lists each file's sha256.\n")
	return b.Bytes()
}

// yamlString quotes a scalar unless it is plainly safe unquoted.
func yamlString(s string) string {
	safe := s != "" && !strings.ContainsAny(s, ":#'\"{}[],&*!|>%@`\n\t") && strings.TrimSpace(s) == s
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "null", "on", "off", "~":
		safe = false
	}
	if safe {
		return s
	}
	return strconv.Quote(s)
}

// frontMatter holds the top-level scalar keys of a card's YAML front matter.
type frontMatter map[string]string

// readFrontMatter reads the license keys from dir/README.md when there is
// one. It understands the subset of YAML cards use for them: top-level
// "key: value" lines, quoted or not; nested or multi-line values are
// skipped. A missing or unreadable card yields nothing.
func readFrontMatter(dir string) frontMatter {
	if dir == "" {
		return nil
	}
	f, err := os.Open(filepath.Join(dir, CardName))
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCardBytes))
	if err != nil {
		return nil
	}
	return parseFrontMatter(b)
}

// licenseKeys are the front-matter keys a derived card copies.
var licenseKeys = map[string]bool{"license": true, "license_name": true, "license_link": true}

func parseFrontMatter(b []byte) frontMatter {
	s := string(b)
	s = strings.TrimPrefix(s, "\ufeff")
	rest, ok := strings.CutPrefix(strings.ReplaceAll(s, "\r\n", "\n"), "---\n")
	if !ok {
		return nil
	}
	out := frontMatter{}
	for _, line := range strings.Split(rest, "\n") {
		if strings.TrimRight(line, " ") == "---" {
			return out
		}
		if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '-' || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || !licenseKeys[k] {
			continue
		}
		v = strings.TrimSpace(v)
		if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			if u, err := strconv.Unquote(`"` + strings.ReplaceAll(v[1:len(v)-1], `"`, `\"`) + `"`); err == nil {
				v = u
			}
		}
		if v == "" || strings.ContainsAny(v, "\n") || v[0] == '[' || v[0] == '{' || v[0] == '|' || v[0] == '>' {
			continue
		}
		out[k] = v
	}
	return nil // no closing ---: not front matter
}

// modelName is how a card names the source model.
func modelName(hubRepo, path string) string {
	if hubRepo != "" {
		return hubRepo
	}
	return filepath.Base(filepath.Clean(path))
}

func sourceLine(m *Manifest, path string) string {
	if m.Hub != nil {
		return fmt.Sprintf("[%s](https://huggingface.co/%s) at commit `%s`", m.Hub.Repo, m.Hub.Repo, m.Hub.Commit)
	}
	return "`" + filepath.Base(filepath.Clean(path)) + "` (a local checkpoint)"
}

// convertCard describes a convert artifact.
func convertCard(s *Source, m *Manifest) []byte {
	c := &card{library: "transformers", precision: string(m.Precision), license: readFrontMatter(s.Dir)}
	if m.Hub != nil {
		c.baseModel = m.Hub.Repo
	}
	name := modelName(c.baseModel, s.Path)
	c.title = fmt.Sprintf("%s — %s", name, strings.ToUpper(string(m.Precision)))
	c.intro = fmt.Sprintf("%s converted to %s by quantpack %s (`quantpack convert %s --precision %s`).",
		sourceLine(m, s.Path), strings.ToUpper(string(m.Precision)), version.Version, name, m.Precision)
	switch m.Precision {
	case Int8, NF4:
		c.intro += " The layout is bitsandbytes', loadable with transformers and bitsandbytes."
	case Int4:
		c.library = "quantpack"
		c.intro += " The layout is ONNX Runtime's MatMulNBits; `quantpack export` turns it into an ONNX graph."
	}
	t := m.Totals
	c.rows = append(c.rows,
		[2]string{"architecture", m.Architecture},
		[2]string{"precision", schemeText(m)},
		[2]string{"parameters", fmt.Sprintf("%s (%s quantized)", human.Count(t.Params), human.Count(t.QuantizedParams))},
		[2]string{"size", fmt.Sprintf("%s → %s (%.3f×), %.2f bits/param", human.Bytes(t.BytesIn), human.Bytes(t.BytesOut), t.Ratio, t.BitsPerParam)})
	if t.MinSQNRdB != nil {
		c.rows = append(c.rows, [2]string{"worst SQNR", fmt.Sprintf("%.1f dB (%s)", *t.MinSQNRdB, t.WorstTensor)})
	}
	if t.FP16Overflow > 0 {
		c.rows = append(c.rows, [2]string{"fp16 overflow", fmt.Sprintf("%d values became ±Inf", t.FP16Overflow)})
	}
	c.extra = worstTable(m.Tensors)
	return c.bytes()
}

func schemeText(m *Manifest) string {
	p := string(m.Precision)
	var parts []string
	if m.Scheme.BlockSize > 0 {
		if m.Scheme.BlockPerTensor {
			parts = append(parts, fmt.Sprintf("block per tensor (up to %d)", m.Scheme.BlockSize))
		} else {
			parts = append(parts, fmt.Sprintf("block %d", m.Scheme.BlockSize))
		}
	}
	if m.Scheme.DoubleQuant {
		parts = append(parts, "double quant")
	}
	if m.Scheme.Symmetric != nil && !*m.Scheme.Symmetric {
		parts = append(parts, "asymmetric")
	}
	parts = append(parts, "other tensors "+m.Scheme.RestDType)
	return p + " (" + strings.Join(parts, ", ") + ")"
}

// worstTable lists the five tensors with the lowest SQNR: where the
// quantization error went.
func worstTable(recs []*TensorRecord) string {
	var rs []*TensorRecord
	for _, r := range recs {
		if r.Error != nil && r.Error.SQNRdB != nil {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return ""
	}
	sort.SliceStable(rs, func(i, j int) bool { return *rs[i].Error.SQNRdB < *rs[j].Error.SQNRdB })
	var b strings.Builder
	b.WriteString("Weight error of the five worst tensors (dequantized against the original):\n\n")
	b.WriteString("| tensor | scheme | SQNR dB | cosine | max abs |\n|---|---|---|---|---|\n")
	for i, r := range rs {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "| `%s` | %s | %.1f | %.6f | %.3g |\n", r.Name, r.Scheme, *r.Error.SQNRdB, r.Error.Cosine, r.Error.MaxAbs)
	}
	return b.String()
}

// exportCard describes an ONNX export.
func exportCard(origin *exportSource, m *ExportManifest) []byte {
	c := &card{library: "onnx", precision: string(m.Precision), license: readFrontMatter(origin.dir)}
	if m.Source.Hub != nil {
		c.baseModel = m.Source.Hub.Repo
	}
	name := modelName(c.baseModel, origin.dir)
	c.title = fmt.Sprintf("%s — ONNX %s", name, strings.ToUpper(string(m.Precision)))
	src := "`" + filepath.Base(filepath.Clean(origin.dir)) + "` (a local " + m.Source.Kind + ")"
	if h := m.Source.Hub; h != nil {
		src = fmt.Sprintf("[%s](https://huggingface.co/%s) at commit `%s`", h.Repo, h.Repo, h.Commit)
	}
	c.intro = fmt.Sprintf("%s exported to ONNX (%s) by quantpack %s; runs in ONNX Runtime.", src, strings.ToUpper(string(m.Precision)), version.Version)
	mode := string(m.Precision)
	if m.Int8Mode != "" {
		mode += " " + m.Int8Mode
	}
	var outs []string
	for _, o := range m.Outputs {
		outs = append(outs, fmt.Sprintf("`%s` %v", o.Name, o.Shape))
	}
	var ins []string
	for _, i := range m.Inputs {
		ins = append(ins, fmt.Sprintf("`%s` %s %v", i.Name, i.DType, i.Shape))
	}
	c.rows = append(c.rows,
		[2]string{"architecture", m.Architecture},
		[2]string{"precision", mode},
		[2]string{"graph", fmt.Sprintf("opset %d, %s", m.Opset, m.Graph)},
		[2]string{"input", strings.Join(ins, ", ") + fmt.Sprintf(" (%dx%d, %s)", m.Image.Height, m.Image.Width, m.Image.From)},
		[2]string{"outputs", strings.Join(outs, ", ")},
		[2]string{"size", fmt.Sprintf("%s (model.onnx %s + model.onnx.data %s)", human.Bytes(m.Sizes.TotalBytes), human.Bytes(m.Sizes.ModelBytes), human.Bytes(m.Sizes.DataBytes))})
	if m.Source.Scheme != nil {
		c.rows = append(c.rows, [2]string{"weights", fmt.Sprintf("%s codes and scales from quantpack convert (other tensors %s)", m.Precision, m.Source.Scheme.RestDType)})
	}
	return c.bytes()
}

// addCard writes the card into dir and adds it to the file list (sorted by
// path, as manifest.Scan returns it).
func addCard(dir string, files []manifest.File, b []byte) ([]manifest.File, error) {
	p := filepath.Join(dir, CardName)
	if err := atomicfile.WriteFile(p, b); err != nil {
		return nil, err
	}
	h, err := manifest.HashFile(p)
	if err != nil {
		return nil, err
	}
	out := make([]manifest.File, 0, len(files)+1)
	for _, f := range files {
		if f.Path != CardName {
			out = append(out, f)
		}
	}
	out = append(out, h)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
