package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/quant"
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

// TestHelpDefaultsFromConvert: every 4-bit default that a command's help
// states (--block-size's and --method's defaults, the int4 default in
// convert's description) is convert's own constant, so the help cannot
// drift from what runs: a number or method typed into a help string fails
// here as soon as convert's default changes.
func TestHelpDefaultsFromConvert(t *testing.T) {
	var names []string
	for _, m := range quant.Methods {
		names = append(names, string(m))
	}
	method := "(" + strings.Join(names, "|") + ")"
	checks := []struct {
		re   *regexp.Regexp
		want string
	}{
		{regexp.MustCompile(`(\d+) for int4`), strconv.Itoa(convert.DefaultInt4Block)},
		{regexp.MustCompile(`(\d+) for nf4`), strconv.Itoa(convert.DefaultNF4Block)},
		{regexp.MustCompile(`\b` + method + ` for int4`), string(convert.DefaultInt4Method)},
		{regexp.MustCompile(`\b` + method + ` for nf4`), string(convert.DefaultNF4Method)},
		{regexp.MustCompile(`default for int4 is block (\d+)`), strconv.Itoa(convert.DefaultInt4Block)},
		{regexp.MustCompile(`default for int4 is block \d+ with ([a-z]+)`), string(convert.DefaultInt4Method)},
		{regexp.MustCompile(`\b` + method + ` \(int4\)`), string(convert.DefaultAWQBaseInt4)},
		{regexp.MustCompile(`\b` + method + ` \(nf4\)`), string(convert.DefaultAWQBaseNF4)},
	}
	seen := map[string]int{}
	for _, c := range newApp().Commands {
		text := c.Description
		for _, f := range c.Flags {
			text += "\n" + f.String()
		}
		for _, k := range checks {
			for _, m := range k.re.FindAllStringSubmatch(text, -1) {
				seen[c.Name]++
				if m[1] != k.want {
					t.Errorf("%s --help says %q; convert's default is %s", c.Name, m[0], k.want)
				}
			}
		}
	}
	// convert and export state block size and method for int4 and nf4
	// and awq's base for both (convert its int4 default twice more);
	// sensitivity the block sizes.
	for name, want := range map[string]int{"convert": 8, "export": 6, "sensitivity": 2} {
		if seen[name] < want {
			t.Errorf("%s --help states %d 4-bit defaults, want at least %d", name, seen[name], want)
		}
	}
}
