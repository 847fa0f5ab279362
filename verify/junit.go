package verify

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// JUnit XML output (verify --junit, study --junit). The document follows
// the Apache Ant JUnit schema as published in windyroad/JUnit-Schema
// (JUnit.xsd), the strictest of the variants that Jenkins, GitLab and the
// GitHub test-report actions read: a <testsuites> root; each <testsuite>
// with the required name, timestamp (no zone), hostname, tests, failures,
// errors, time, package and id, and the required <properties>,
// <system-out> and <system-err> children around its test cases; each
// <testcase> with name, classname and time; each <failure> with message
// and type and the details as text.

// JUnitCase is one test case; Failure is empty when it passed.
type JUnitCase struct {
	Name      string
	Classname string
	Seconds   float64
	// Failure is the failure message (measured vs limit); Details the
	// text inside the element.
	Failure string
	Details string
}

// JUnitSuite is one test suite.
type JUnitSuite struct {
	Name    string
	Package string
	Seconds float64
	Cases   []JUnitCase
}

type xmlSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Name     string     `xml:"name,attr,omitempty"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Time     string     `xml:"time,attr"`
	Suites   []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name       string    `xml:"name,attr"`
	Package    string    `xml:"package,attr"`
	ID         int       `xml:"id,attr"`
	Timestamp  string    `xml:"timestamp,attr"`
	Hostname   string    `xml:"hostname,attr"`
	Tests      int       `xml:"tests,attr"`
	Failures   int       `xml:"failures,attr"`
	Errors     int       `xml:"errors,attr"`
	Time       string    `xml:"time,attr"`
	Properties struct{}  `xml:"properties"`
	Cases      []xmlCase `xml:"testcase"`
	SystemOut  string    `xml:"system-out"`
	SystemErr  string    `xml:"system-err"`
}

type xmlCase struct {
	Name      string      `xml:"name,attr"`
	Classname string      `xml:"classname,attr"`
	Time      string      `xml:"time,attr"`
	Failure   *xmlFailure `xml:"failure"`
}

type xmlFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes suites as one JUnit XML document; now is the
// suites' timestamp.
func WriteJUnit(w io.Writer, name string, suites []JUnitSuite, now time.Time) error {
	host, err := os.Hostname()
	if err != nil {
		host = ""
	}
	host = nonEmpty(host, "localhost")
	secs := func(s float64) string { return fmt.Sprintf("%.3f", max(s, 0)) }
	doc := xmlSuites{Name: name}
	var total float64
	for i, s := range suites {
		xs := xmlSuite{Name: nonEmpty(s.Name, "quantpack"), Package: nonEmpty(s.Package, "quantpack"), ID: i,
			Timestamp: now.UTC().Format("2006-01-02T15:04:05"), Hostname: host, Time: secs(s.Seconds)}
		for _, c := range s.Cases {
			xc := xmlCase{Name: nonEmpty(c.Name, "unnamed"), Classname: nonEmpty(c.Classname, xs.Package), Time: secs(c.Seconds)}
			if c.Failure != "" {
				xc.Failure = &xmlFailure{Message: c.Failure, Type: "quantpack.GateFailed", Text: nonEmpty(c.Details, c.Failure)}
				xs.Failures++
			}
			xs.Cases = append(xs.Cases, xc)
		}
		xs.Tests = len(xs.Cases)
		doc.Tests += xs.Tests
		doc.Failures += xs.Failures
		total += s.Seconds
		doc.Suites = append(doc.Suites, xs)
	}
	doc.Time = secs(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// nonEmpty is s as an xs:token (whitespace runs collapsed to one space,
// none at the ends), or def when nothing is left.
func nonEmpty(s, def string) string {
	if t := strings.Join(strings.Fields(s), " "); t != "" {
		return t
	}
	return def
}

// GateName is a gate sentence's flag name: the text before the first ":".
func GateName(sentence string) string {
	name, _, _ := strings.Cut(sentence, ":")
	return name
}

// JUnitSuite returns the run's gates as a test suite: one case per gate,
// named by its flag, failed gates with the measured value and the limit as
// the message. A run without gates has one passing case, "verify", so
// that a CI report shows that it ran. seconds is the run's duration.
func (r *Report) JUnitSuite(seconds float64) JUnitSuite {
	s := JUnitSuite{Name: "quantpack verify " + r.Candidate.Path, Package: "quantpack.verify", Seconds: seconds}
	class := "quantpack.verify." + strings.NewReplacer("/", "_", ".", "_", " ", "_").Replace(strings.Trim(r.Candidate.Path, "/"))
	seen := map[string]int{}
	name := func(g string) string {
		// A gate checked at several batch sizes gives several cases; the
		// second and later get their ordinal, so names stay unique.
		n := nonEmpty(GateName(g), "gate")
		seen[n]++
		if k := seen[n]; k > 1 {
			return fmt.Sprintf("%s #%d", n, k)
		}
		return n
	}
	for _, g := range r.Gates.Failed {
		s.Cases = append(s.Cases, JUnitCase{Name: name(g), Classname: class, Failure: g,
			Details: fmt.Sprintf("%s\nbaseline %s, candidate %s", g, r.Baseline.Path, r.Candidate.Path)})
	}
	for _, g := range r.Gates.Passed {
		s.Cases = append(s.Cases, JUnitCase{Name: name(g), Classname: class})
	}
	if len(s.Cases) == 0 {
		s.Cases = append(s.Cases, JUnitCase{Name: "verify", Classname: class})
	}
	return s
}
