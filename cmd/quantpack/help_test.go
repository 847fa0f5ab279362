package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestFlagHelp checks every flag's help line as urfave/cli renders it: a
// value flag names its placeholder (`--ort-lib PATH`, not "value", and not
// the first backticked words of the usage, which once made `--ort-lib make
// ort`), the default is printed at most once (not "(default 32)… (default:
// 0)"), and a switch that is off by default does not say "(default: false)".
func TestFlagHelp(t *testing.T) {
	for _, c := range newApp().Commands {
		for _, f := range c.Flags {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok || isHidden(f) {
				continue
			}
			line := f.String()
			name := c.Name + " --" + f.Names()[0]
			if n := strings.Count(line, "(default"); n > 1 {
				t.Errorf("%s: the default is printed %d times: %q", name, n, line)
			}
			if strings.Contains(line, "(default: false)") {
				t.Errorf("%s: an off switch says (default: false): %q", name, line)
			}
			if !df.TakesValue() {
				continue
			}
			head, _, _ := strings.Cut(line, "\t")
			head, _, _ = strings.Cut(head, " [") // a slice flag repeats itself
			fields := strings.Fields(strings.Split(head, ",")[0])
			if len(fields) != 2 {
				t.Errorf("%s: want one placeholder word, got %q", name, head)
				continue
			}
			if ph := fields[1]; ph == "value" || strings.ToUpper(ph) != ph {
				t.Errorf("%s: placeholder %q; name it in capitals in the usage's backticks", name, ph)
			}
		}
	}
}

func isHidden(f cli.Flag) bool {
	v, ok := f.(interface{ IsVisible() bool })
	return ok && !v.IsVisible()
}

// A bare `quantpack` is a usage mistake: exit 2 (help goes to stderr).
func TestBareIsUsage(t *testing.T) {
	if code := run([]string{"quantpack"}); code != ExitUsage {
		t.Fatalf("bare quantpack: exit %d, want %d", code, ExitUsage)
	}
	if code := run([]string{"quantpack", "--help"}); code != ExitOK {
		t.Fatalf("quantpack --help: exit %d, want 0", code)
	}
}
