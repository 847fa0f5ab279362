package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/study"
)

// junitDoc is enough of a JUnit document to read verdicts back.
type junitDoc struct {
	Suites []struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

// TestVerifyBaselineReportCLI: the release flow on the command line. The
// same export passes against its own report; a larger candidate fails with
// exit 5 naming the gate, in stderr, the JSON and the JUnit file; a report
// from another machine is refused for latency (exit 2) unless allowed.
func TestVerifyBaselineReportCLI(t *testing.T) {
	requireORT(t)
	base := exportRef(t, "vit", convert.ExportFP32)
	cand := exportRef(t, "vit", convert.ExportInt8)
	dir := t.TempDir()
	common := []string{"--iters", "4", "--warmup", "1", "--samples", "4", "--threads", "1", "--no-memory"}
	code, out := runCLI(t, append([]string{"verify", base, cand, "--json"}, common...)...)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	prev := filepath.Join(dir, "prev.json")
	if err := os.WriteFile(prev, out, 0o644); err != nil {
		t.Fatal(err)
	}
	summary := filepath.Join(dir, "summary.md")
	t.Setenv(envStepSummary, summary)
	junit := filepath.Join(dir, "gates.xml")
	code, out = runCLI(t, append([]string{"verify", base, cand, "--json", "--baseline-report", prev, "--max-size-regression", "0",
		"--max-agreement-regression", "0", "--max-latency-regression", "1000", "--junit", junit}, common...)...)
	if code != ExitOK {
		t.Fatalf("same export against its own report: exit %d\n%s", code, out)
	}
	r := decodeReport(t, out)
	if r.Regression == nil || !r.Regression.SameMachine || len(r.Gates.Passed) != 3 || r.Statistics == nil || r.Statistics.Top1Agreement == nil {
		t.Fatalf("regression %+v gates %+v", r.Regression, r.Gates)
	}
	checkSchema(t, out)
	if d := readJUnit(t, junit); len(d.Suites) != 1 || d.Suites[0].Tests != 3 || d.Suites[0].Failures != 0 {
		t.Fatalf("junit %+v", d)
	}
	if md, err := os.ReadFile(summary); err != nil || !strings.Contains(string(md), "### Against the previous report") {
		t.Fatalf("$GITHUB_STEP_SUMMARY: %v\n%s", err, md)
	}

	// The FP32 export as the candidate: 15% larger than the int8 one.
	code, out = runCLI(t, append([]string{"verify", base, base, "--json", "--baseline-report", prev, "--max-size-regression", "5",
		"--junit", junit}, common...)...)
	if code != ExitGate {
		t.Fatalf("larger candidate: exit %d, want %d\n%s", code, ExitGate, out)
	}
	r = decodeReport(t, out)
	if len(r.Gates.Failed) != 1 || !strings.HasPrefix(r.Gates.Failed[0], "max-size-regression: ") {
		t.Fatalf("failed gates %q", r.Gates.Failed)
	}
	d := readJUnit(t, junit)
	if len(d.Suites) != 1 || d.Suites[0].Failures != 1 || d.Suites[0].Cases[0].Name != "max-size-regression" ||
		!strings.Contains(d.Suites[0].Cases[0].Failure.Message, "(max 5%)") {
		t.Fatalf("junit %+v", d)
	}

	// Another machine: refused for latency, allowed with the flag.
	var other map[string]any
	b, _ := os.ReadFile(prev)
	json.Unmarshal(b, &other)
	other["provenance"].(map[string]any)["cpu_model"] = "a different CPU"
	b, _ = json.Marshal(other)
	otherPath := filepath.Join(dir, "other.json")
	os.WriteFile(otherPath, b, 0o644)
	code, _ = runCLI(t, append([]string{"verify", base, cand, "--baseline-report", otherPath, "--max-latency-regression", "1000"}, common...)...)
	if code != ExitUsage {
		t.Fatalf("other machine: exit %d, want %d", code, ExitUsage)
	}
	code, out = runCLI(t, append([]string{"verify", base, cand, "--json", "--baseline-report", otherPath, "--max-latency-regression", "1000",
		"--allow-other-machine"}, common...)...)
	if code != ExitOK || decodeReport(t, out).Regression.SameMachine {
		t.Fatalf("--allow-other-machine: exit %d\n%s", code, out)
	}
	// Usage: a regression gate without a report, a negative limit.
	for _, args := range [][]string{
		{"verify", base, cand, "--max-size-regression", "1"},
		{"verify", base, cand, "--baseline-report", prev, "--max-size-regression", "-1"},
	} {
		if code, _ := runCLI(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
	if code, _ := runCLI(t, "verify", base, cand, "--baseline-report", filepath.Join(dir, "missing.json")); code != ExitInvalid {
		t.Errorf("missing --baseline-report: exit %d, want %d", code, ExitInvalid)
	}
}

// TestStudyShardsCLI: two shards from --shard auto (GitLab's variables),
// merged on the command line; a missing shard is named, exit 2.
func TestStudyShardsCLI(t *testing.T) {
	requireORT(t)
	vit := repoFixture(t, filepath.Join("reference", "vit"))
	deit := repoFixture(t, filepath.Join("reference", "deit-distilled"))
	dir := t.TempDir()
	args := []string{"study", vit, deit, "--precisions", "fp32,int8", "--iters", "2", "--warmup", "0", "--samples", "2",
		"--threads", "1", "--no-memory", "--shard", "auto", "--json"}
	var shards []string
	for _, i := range []string{"1", "2"} {
		t.Setenv(study.EnvGitLabIndex, i)
		t.Setenv(study.EnvGitLabTotal, "2")
		out := filepath.Join(dir, "shard-"+i)
		code, stdout := runCLI(t, append(args, "-o", out, "--junit", out+".xml")...)
		if code != ExitOK {
			t.Fatalf("shard %s: exit %d\n%s", i, code, stdout)
		}
		shards = append(shards, out)
	}
	merged := filepath.Join(dir, "merged")
	summary := filepath.Join(dir, "summary.md")
	t.Setenv(envStepSummary, summary)
	code, stdout := runCLI(t, "study", "merge", shards[0], shards[1], "-o", merged, "--junit", merged+".xml")
	if code != ExitOK {
		t.Fatalf("merge: exit %d\n%s", code, stdout)
	}
	if md, err := os.ReadFile(summary); err != nil || !strings.HasPrefix(string(md), "# quantpack study") {
		t.Fatalf("$GITHUB_STEP_SUMMARY after merge: %v\n%.200s", err, md)
	}
	r, err := study.ReadReport(merged)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cells) != 4 || len(r.Recommendations) != 2 || r.Shard != nil {
		t.Fatalf("merged: %d cells, %d recommendations, shard %+v", len(r.Cells), len(r.Recommendations), r.Shard)
	}
	if d := readJUnit(t, merged+".xml"); len(d.Suites) != 1 || d.Suites[0].Tests != 2 {
		t.Fatalf("merge junit %+v", d)
	}
	if code, _ := runCLI(t, "study", "merge", shards[1], "-o", filepath.Join(dir, "m2")); code != ExitUsage {
		t.Fatalf("merge with a shard missing: exit %d, want %d", code, ExitUsage)
	}
	if code, _ := runCLI(t, "study", "merge", shards[0]); code != ExitUsage {
		t.Fatalf("merge without -o: exit %d, want %d", code, ExitUsage)
	}
	if code, _ := runCLI(t, "study", vit, "-o", filepath.Join(dir, "x"), "--shard", "3/2"); code != ExitUsage {
		t.Fatalf("--shard 3/2: exit %d, want %d", code, ExitUsage)
	}
}

// TestFailJUnit: a run that fails before its gates leaves a JUnit file with
// one failing case carrying the error, returns that same error (its class,
// hence the exit code, unchanged), and writes nothing without --junit.
func TestFailJUnit(t *testing.T) {
	cause := usagef("bad flag")
	junit := filepath.Join(t.TempDir(), "junit.xml")
	if err := failJUnit(junit, "quantpack study", "quantpack.study", cause, 1.5); err != cause {
		t.Fatalf("returned %v, want the run's error itself", err)
	}
	d := readJUnit(t, junit)
	if len(d.Suites) != 1 || d.Suites[0].Failures != 1 || len(d.Suites[0].Cases) != 1 ||
		d.Suites[0].Cases[0].Failure == nil || !strings.Contains(d.Suites[0].Cases[0].Failure.Message, "bad flag") {
		t.Errorf("junit: %+v", d)
	}
	if err := failJUnit("", "quantpack verify", "quantpack.verify", cause, 0); err != cause {
		t.Errorf("without --junit: returned %v", err)
	}
	unwritable := filepath.Join(t.TempDir(), "missing", "junit.xml")
	err := failJUnit(unwritable, "quantpack verify", "quantpack.verify", cause, 0)
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), unwritable) || exitCode(err) != ExitUsage {
		t.Errorf("unwritable --junit: %v (exit %d), want the run's error and the file's, exit %d", err, exitCode(err), ExitUsage)
	}
}
