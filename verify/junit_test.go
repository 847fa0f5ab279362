package verify

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// xmlNode is a parsed element: enough of a DOM to check a schema.
type xmlNode struct {
	name     string
	attrs    map[string]string
	children []*xmlNode
	text     string
}

func parseXML(t *testing.T, b []byte) *xmlNode {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: tk.Name.Local, attrs: map[string]string{}}
			for _, a := range tk.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root != nil {
				t.Fatal("two root elements")
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tk)
			}
		}
	}
	return root
}

// validateJUnit checks a document against the structure of the Apache Ant
// JUnit schema as published in windyroad/JUnit-Schema (JUnit.xsd), without
// an XSD engine: the element nesting and order, the required attributes
// and their types, no attributes the schema does not declare, and counts
// that match the cases.
//
//	testsuites    > testsuite*                    (attrs: none required)
//	testsuite     : name, timestamp, hostname, tests, failures, errors, time,
//	                package, id (all required); optional: none
//	                > properties, testcase*, system-out, system-err (in order)
//	properties    > property* (name, value)
//	testcase      : name, classname, time (required) > (error | failure)?
//	failure/error : type (required), message (optional); text content
func validateJUnit(root *xmlNode) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	token := regexp.MustCompile(`^\S(.*\S)?$`)
	timestamp := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$`) // ISO8601_DATETIME_PATTERN, no zone
	decimal := regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	attrs := func(n *xmlNode, required, optional []string) {
		for _, a := range required {
			if _, ok := n.attrs[a]; !ok {
				bad("<%s> lacks required attribute %q", n.name, a)
			}
		}
		for a := range n.attrs {
			if !slices.Contains(required, a) && !slices.Contains(optional, a) {
				bad("<%s> has attribute %q the schema does not declare", n.name, a)
			}
		}
	}
	nonNegInt := func(n *xmlNode, a string) int {
		v, err := strconv.Atoi(n.attrs[a])
		if err != nil || v < 0 {
			bad("<%s %s=%q>: want a non-negative integer", n.name, a, n.attrs[a])
		}
		return v
	}
	if root == nil || root.name != "testsuites" {
		return []string{"root element is not <testsuites>"}
	}
	attrs(root, nil, []string{"name", "tests", "failures", "errors", "time", "disabled"})
	for i, s := range root.children {
		if s.name != "testsuite" {
			bad("<testsuites> child %d is <%s>", i, s.name)
			continue
		}
		attrs(s, []string{"name", "timestamp", "hostname", "tests", "failures", "errors", "time", "package", "id"}, nil)
		if !token.MatchString(s.attrs["name"]) || !token.MatchString(s.attrs["hostname"]) || !token.MatchString(s.attrs["package"]) {
			bad("testsuite name/hostname/package must be non-empty tokens: %v", s.attrs)
		}
		if !timestamp.MatchString(s.attrs["timestamp"]) {
			bad("testsuite timestamp %q is not yyyy-mm-ddThh:mm:ss", s.attrs["timestamp"])
		}
		if !decimal.MatchString(s.attrs["time"]) {
			bad("testsuite time %q is not a decimal", s.attrs["time"])
		}
		if _, err := strconv.Atoi(s.attrs["id"]); err != nil {
			bad("testsuite id %q is not an int", s.attrs["id"])
		}
		tests, failures, errors := nonNegInt(s, "tests"), nonNegInt(s, "failures"), nonNegInt(s, "errors")
		var order []string
		cases, nf, ne := 0, 0, 0
		for _, c := range s.children {
			order = append(order, c.name)
			switch c.name {
			case "properties":
				for _, p := range c.children {
					if p.name != "property" {
						bad("<properties> holds <%s>", p.name)
					}
					attrs(p, []string{"name", "value"}, nil)
				}
			case "testcase":
				cases++
				attrs(c, []string{"name", "classname", "time"}, nil)
				if !token.MatchString(c.attrs["name"]) || !token.MatchString(c.attrs["classname"]) {
					bad("testcase name/classname must be non-empty tokens: %v", c.attrs)
				}
				if !decimal.MatchString(c.attrs["time"]) {
					bad("testcase time %q is not a decimal", c.attrs["time"])
				}
				if len(c.children) > 1 {
					bad("testcase %q has %d children, the schema allows one error or failure", c.attrs["name"], len(c.children))
				}
				for _, f := range c.children {
					switch f.name {
					case "failure":
						nf++
					case "error":
						ne++
					default:
						bad("testcase holds <%s>", f.name)
					}
					attrs(f, []string{"type"}, []string{"message"})
				}
			case "system-out", "system-err":
				if len(c.children) > 0 {
					bad("<%s> holds elements", c.name)
				}
			default:
				bad("testsuite holds <%s>", c.name)
			}
		}
		want := []string{"properties"}
		for range cases {
			want = append(want, "testcase")
		}
		want = append(want, "system-out", "system-err")
		if !slices.Equal(order, want) {
			bad("testsuite children %v, the schema's sequence is properties, testcase*, system-out, system-err", order)
		}
		if tests != cases || failures != nf || errors != ne {
			bad("testsuite says tests=%d failures=%d errors=%d, holds %d cases, %d failures, %d errors", tests, failures, errors, cases, nf, ne)
		}
	}
	return errs
}

// TestJUnitValid writes a verify report's gates as JUnit and validates the
// document: one case per gate, the failure message with measured and limit.
func TestJUnitValid(t *testing.T) {
	r := &Report{Candidate: ModelReport{Path: "out/int8"}, Baseline: ModelReport{Path: "out/fp32"}, Gates: GateResults{
		Failed: []string{"min-cosine: 0.97 (min 0.99)", "max-latency-ms: candidate p50 12 ms at batch 1 (max 10)",
			"max-latency-ms: candidate p50 80 ms at batch 8 (max 10)"},
		Passed: []string{"max-size-ratio: 0.25 (max 0.5) <&\"'>"},
	}}
	var b bytes.Buffer
	if err := WriteJUnit(&b, "quantpack", []JUnitSuite{r.JUnitSuite(1.5)}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	root := parseXML(t, b.Bytes())
	if errs := validateJUnit(root); len(errs) > 0 {
		t.Fatalf("invalid JUnit:\n%s\n%s", strings.Join(errs, "\n"), b.String())
	}
	suite := root.children[0]
	var names []string
	var failures []string
	for _, c := range suite.children {
		if c.name != "testcase" {
			continue
		}
		names = append(names, c.attrs["name"])
		if len(c.children) == 1 {
			failures = append(failures, c.children[0].attrs["message"])
		}
	}
	if want := []string{"min-cosine", "max-latency-ms", "max-latency-ms #2", "max-size-ratio"}; !slices.Equal(names, want) {
		t.Fatalf("cases %v, want %v", names, want)
	}
	if len(failures) != 3 || failures[0] != "min-cosine: 0.97 (min 0.99)" {
		t.Fatalf("failure messages %q", failures)
	}
	if suite.attrs["timestamp"] != "2026-01-02T03:04:05" {
		t.Fatalf("timestamp %q", suite.attrs["timestamp"])
	}
	// The validator itself rejects what the schema rejects.
	for _, broken := range []string{
		`<testsuites><testsuite name="a" timestamp="2026-01-02T03:04:05" hostname="h" tests="1" failures="0" errors="0" time="1" package="p" id="0"><testcase name="x" classname="c" time="0"/><system-out/><system-err/></testsuite></testsuites>`,
		`<testsuites><testsuite name="a" timestamp="2026-01-02T03:04:05Z" hostname="h" tests="0" failures="0" errors="0" time="1" package="p" id="0"><properties/><system-out/><system-err/></testsuite></testsuites>`,
		`<testsuites><testsuite name="a" timestamp="2026-01-02T03:04:05" hostname="h" tests="1" failures="1" errors="0" time="1" package="p" id="0"><properties/><testcase name="x" classname="c" time="0"><failure message="m"/></testcase><system-out/><system-err/></testsuite></testsuites>`,
		`<testsuites><testsuite name="a" timestamp="2026-01-02T03:04:05" hostname="h" tests="2" failures="0" errors="0" time="1" package="p" id="0"><properties/><testcase name="x" classname="c" time="0"/><system-out/><system-err/></testsuite></testsuites>`,
		`<testsuite name="a"/>`,
	} {
		if errs := validateJUnit(parseXML(t, []byte(broken))); len(errs) == 0 {
			t.Errorf("validator accepted %s", broken)
		}
	}
}

// FuzzJUnit: any gate sentence and path (paths come from the user, gate
// text quotes them) still gives a well-formed, schema-valid document.
func FuzzJUnit(f *testing.F) {
	f.Add("min-cosine: 0.5 (min 0.9)", "out/int8")
	f.Add("x\x00\x01\xff<]]>&", "a b/\"c\"")
	f.Add(":", "")
	f.Fuzz(func(t *testing.T, gate, path string) {
		r := &Report{Candidate: ModelReport{Path: path}, Gates: GateResults{Failed: []string{gate}, Passed: []string{gate}}}
		var b bytes.Buffer
		if err := WriteJUnit(&b, "quantpack", []JUnitSuite{r.JUnitSuite(0)}, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
		if errs := validateJUnit(parseXML(t, b.Bytes())); len(errs) > 0 {
			t.Fatalf("%q %q: %s\n%s", gate, path, strings.Join(errs, "; "), b.String())
		}
	})
}
