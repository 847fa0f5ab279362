package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/internal/fault"
)

// errNoInput is the class of a command-line input that does not exist:
// input invalid, exit 3, whichever command was given it.
var errNoInput = fault.New(fault.Invalid, "no such file or directory")

// inputError says which command was given which missing input, and what to
// do about it. Its message has one shape everywhere:
//
//	convert: SRC "vit-bse": no such file or directory
type inputError struct {
	Cmd, Arg, Path string
	Hint           string // what to do instead, or ""
	Err            error  // the stat error
}

func (e *inputError) Error() string {
	s := fmt.Sprintf("%s: %s %q: %v", e.Cmd, e.Arg, e.Path, errNoInput)
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *inputError) Unwrap() []error { return []error{errNoInput, e.Err} }

// hubID matches what the Hugging Face Hub accepts as a repository id,
// owner/name; a local path that happens to look like one is still tried
// first.
var hubID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)

// looksLikeHubID reports whether a path that does not exist locally reads
// as a Hub repository id (google/vit-base-patch16-224) rather than a path.
func looksLikeHubID(p string) bool {
	if !hubID.MatchString(p) {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "." || part == ".." || strings.Contains(part, "..") {
			return false
		}
	}
	return true
}

// resolveInput is the one place a command's input argument becomes a local
// path: cmd and arg name the command and the argument for the message
// ("convert", "SRC"). It returns the cleaned path when it exists; a missing
// path is an inputError (exit 3), with a hint when it looks like a Hub id.
// Other stat failures (permissions) are returned as they are, with the same
// prefix.
//
// Commands that read a checkpoint call resolveSource (source.go), which
// tries the Hub first and falls back to this.
func resolveInput(cmd, arg, p string) (string, error) {
	if p == "" {
		return "", usagef("%s: %s is empty", cmd, arg)
	}
	clean := filepath.Clean(p)
	_, err := os.Stat(clean)
	switch {
	case err == nil:
		return clean, nil
	case errors.Is(err, fs.ErrNotExist):
		e := &inputError{Cmd: cmd, Arg: arg, Path: p, Err: err}
		if looksLikeHubID(p) {
			e.Hint = fmt.Sprintf("it looks like a Hugging Face Hub id, but %s takes a local path here "+
				"(inspect, convert, export, study and sensitivity resolve Hub ids; see docs/hub.md)", cmd)
		}
		return "", e
	}
	return "", fmt.Errorf("%s: %s %q: %w", cmd, arg, p, err)
}

// outputPath is the one place a command's -o becomes a path: cleaned once,
// so that "deploy/", "./deploy" and "deploy" are the same directory to every
// function below (a trailing slash once put unpack's temporary directory
// inside its own target).
func outputPath(c *cli.Context) string {
	o := c.String("output")
	if o == "" {
		return ""
	}
	return filepath.Clean(o)
}
