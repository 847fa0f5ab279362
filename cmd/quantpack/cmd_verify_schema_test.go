package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// schemaRow is one row of the JSON schema table in docs/verify.md.
type schemaRow struct {
	types    []string // "string", "integer", "number", "boolean", "array", "object", "null"
	required bool
}

var schemaRowRe = regexp.MustCompile("^\\| `([^`]+)` \\| ([a-z|\\\\]+) \\| ([a-z]+) \\|")

// loadSchema reads the schema table of docs/verify.md.
func loadSchema(t *testing.T) map[string]schemaRow {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "docs", "verify.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]schemaRow{}
	inSchema := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			inSchema = strings.HasPrefix(line, "## JSON schema")
		}
		m := schemaRowRe.FindStringSubmatch(line)
		if !inSchema || m == nil {
			continue
		}
		rows[m[1]] = schemaRow{types: strings.Split(strings.ReplaceAll(m[2], `\`, ""), "|"), required: m[3] == "yes"}
	}
	if len(rows) < 50 {
		t.Fatalf("docs/verify.md: only %d schema rows parsed", len(rows))
	}
	return rows
}

// schemaPath maps a concrete JSON path to its schema row's key: candidate
// members are documented under baseline, map keys of providers as *.
func schemaPath(p string) string {
	p = strings.Replace(p, "candidate", "baseline", 1)
	if i := strings.Index(p, ".providers."); i >= 0 {
		p = p[:i] + ".providers.*"
	}
	return p
}

// flatten records every path of v (arrays as name[]) with its JSON type.
func flatten(v any, path string, out map[string][]string) {
	var typ string
	switch x := v.(type) {
	case nil:
		typ = "null"
	case string:
		typ = "string"
	case bool:
		typ = "boolean"
	case json.Number:
		typ = "number"
		if _, err := x.Int64(); err == nil {
			typ = "integer"
		}
	case []any:
		typ = "array"
		for _, e := range x {
			flatten(e, path+"[]", out)
		}
	case map[string]any:
		typ = "object"
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flatten(e, p, out)
		}
	}
	if path != "" {
		out[path] = append(out[path], typ)
	}
}

// checkSchema validates a verify --json output against docs/verify.md:
// every member documented with a matching type, every required member
// present where its parent is.
func checkSchema(t *testing.T, out []byte) {
	t.Helper()
	for _, e := range schemaErrors(loadSchema(t), out) {
		t.Error(e)
	}
}

func schemaErrors(schema map[string]schemaRow, out []byte) []string {
	var errs []string
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{err.Error()}
	}
	have := map[string][]string{}
	flatten(v, "", have)
	for p, types := range have {
		row, ok := schema[schemaPath(p)]
		if !ok {
			errs = append(errs, fmt.Sprintf("output member %s is not in docs/verify.md", p))
			continue
		}
		for _, typ := range types {
			okType := false
			for _, want := range row.types {
				okType = okType || want == typ || (want == "number" && typ == "integer")
			}
			if !okType {
				errs = append(errs, fmt.Sprintf("%s is %s, docs/verify.md says %v", p, typ, row.types))
			}
		}
	}
	var keys []string
	for k := range schema {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !schema[k].required || strings.HasSuffix(k, "[]") || strings.HasSuffix(k, ".*") {
			continue
		}
		paths := []string{k}
		if strings.Contains(k, "baseline") {
			paths = append(paths, strings.Replace(k, "baseline", "candidate", 1))
		}
		for _, p := range paths {
			parent := ""
			if i := strings.LastIndex(p, "."); i >= 0 {
				parent = p[:i]
			}
			if parent != "" {
				pt, ok := have[parent]
				if !ok || pt[0] == "null" {
					continue // parent absent or null: nothing required below it
				}
			}
			if _, ok := have[p]; !ok {
				errs = append(errs, fmt.Sprintf("required member %s missing from the output", p))
			}
		}
	}
	return errs
}

// TestSchemaCheckFails makes sure checkSchema can fail: an undocumented
// member, a wrong type and a missing required member are each caught.
func TestSchemaCheckFails(t *testing.T) {
	schema := loadSchema(t)
	if _, ok := schema["baseline.latency_ms.p50"]; !ok {
		t.Fatal("contract key baseline.latency_ms.p50 not documented")
	}
	for _, bad := range []string{
		`{"format": "x", "surprise": 1}`,
		`{"format": 3}`,
		`{"format": "x", "gates": {"passed": []}}`,
	} {
		if len(schemaErrors(schema, []byte(bad))) == 0 {
			t.Errorf("checkSchema accepted %s", bad)
		}
	}
}
