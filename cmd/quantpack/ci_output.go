package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/verify"
)

// CI outputs shared by verify and study: --junit FILE and the Markdown
// report appended to $GITHUB_STEP_SUMMARY when it is set.

// envStepSummary is the file GitHub Actions shows on a job's summary page.
const envStepSummary = "GITHUB_STEP_SUMMARY"

func junitFlag() cli.Flag {
	return &cli.StringFlag{Name: "junit", Usage: "also write the gates as JUnit XML to `FILE` (one test case per gate), for CI test reports"}
}

// writeJUnit writes suites to path atomically; "" writes nothing.
func writeJUnit(path string, suites []verify.JUnitSuite) error {
	if path == "" {
		return nil
	}
	var b bytes.Buffer
	if err := verify.WriteJUnit(&b, "quantpack", suites, time.Now()); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b.Bytes()); err != nil {
		return fmt.Errorf("--junit %s: %w", path, err)
	}
	return nil
}

// failJUnit ends a run that failed before its gates were judged: it writes
// to path (--junit; "" writes nothing) one failing case with err, so that
// the CI report shows it, and returns err, joined with a failure to write.
func failJUnit(path, name, class string, err error, seconds float64) error {
	suite := verify.JUnitSuite{Name: name, Package: class, Seconds: seconds,
		Cases: []verify.JUnitCase{{Name: "run", Classname: class, Failure: err.Error(), Seconds: seconds}}}
	if jerr := writeJUnit(path, []verify.JUnitSuite{suite}); jerr != nil {
		return errors.Join(err, jerr)
	}
	return err
}

// appendStepSummary appends md to $GITHUB_STEP_SUMMARY when it is set (on
// GitHub Actions); elsewhere it does nothing.
func appendStepSummary(md []byte) error {
	path := os.Getenv(envStepSummary)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("$%s: %w", envStepSummary, err)
	}
	if _, err := f.Write(append(md, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("$%s: %w", envStepSummary, err)
	}
	return f.Close()
}

// percentFlag reads a regression limit: a finite percentage ≥ 0, or nil
// when the flag is not set.
func percentFlag(c *cli.Context, name string) (*float64, error) {
	if !c.IsSet(name) {
		return nil, nil
	}
	v := c.Float64(name)
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return nil, usagef("--%s %v: want a percentage ≥ 0", name, v)
	}
	return &v, nil
}
