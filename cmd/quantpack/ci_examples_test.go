package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/quantpack/quantpack/convert"
	"github.com/quantpack/quantpack/study"
)

// The CI examples in docs/ci/ are documentation that runs on someone else's
// machines: this test keeps them true. It parses each file as YAML, finds
// every `bin/quantpack` invocation in its shell steps, expands the CI's
// variables for every shard, and checks each against the real CLI: the
// command and subcommand exist, every flag is one of that command's (with a
// value where it takes one), the required flags are given, presets and
// precisions exist, --shard parses and its total matches the matrix, and
// the merge step lists every shard.

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		next := filepath.Dir(dir)
		if next == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = next
	}
}

// yamlScripts collects the shell scripts of a CI file: every string under
// a run (GitHub) or script/before_script/after_script (GitLab) key.
func yamlScripts(n *yaml.Node, under bool, out *[]string) {
	if under && n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		*out = append(*out, n.Value)
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch n.Content[i].Value {
			case "run", "script", "before_script", "after_script":
				yamlScripts(n.Content[i+1], true, out)
			default:
				yamlScripts(n.Content[i+1], under, out)
			}
		}
		return
	}
	for _, c := range n.Content {
		yamlScripts(c, under, out)
	}
}

// yamlGet walks mapping keys.
func yamlGet(n *yaml.Node, keys ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// shellWords splits one command line into words: quotes grouped, a word
// ends at blanks; redirections and pipes end the command.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	in := false
	var quote rune
	flush := func() {
		if in {
			words = append(words, cur.String())
			cur.Reset()
			in = false
		}
	}
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			flush()
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	flush()
	return words
}

// untilOperator cuts words at the first redirection, pipe or list operator.
func untilOperator(words []string) []string {
	for i, w := range words {
		if w == "|" || w == "&&" || w == "||" || w == ";" || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") {
			return words[:i]
		}
	}
	return words
}

// invocations finds the quantpack command lines in a script: continuation
// backslashes joined, one command per line, `bin/quantpack` dropped.
func invocations(script string) [][]string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var out [][]string
	for _, line := range strings.Split(script, "\n") {
		words := shellWords(line)
		for i, w := range words {
			if w == "bin/quantpack" || w == "./bin/quantpack" {
				out = append(out, untilOperator(words[i+1:]))
				break
			}
		}
	}
	return out
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

// outputRequired are commands whose -o is checked in their Action rather
// than marked Required (so that `study merge` can dispatch).
var outputRequired = map[string]bool{"study": true, "study merge": true}

// checkInvocation checks args (after `quantpack`) against the CLI and
// returns the parsed flags and operands.
func checkInvocation(app *cli.App, args []string) (path string, flags map[string]string, operands []string, err error) {
	if len(args) == 0 {
		return "", nil, nil, fmt.Errorf("no command")
	}
	cmd := findCommand(app.Commands, args[0])
	if cmd == nil {
		return "", nil, nil, fmt.Errorf("no command %q", args[0])
	}
	path, rest := cmd.Name, args[1:]
	if len(rest) > 0 {
		if sub := findCommand(cmd.Subcommands, rest[0]); sub != nil {
			cmd, path, rest = sub, path+" "+sub.Name, rest[1:]
		}
	}
	known := map[string]cli.Flag{}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			known[n] = f
		}
	}
	flags = map[string]string{}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if !strings.HasPrefix(a, "-") {
			operands = append(operands, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := known[name]
		if !ok {
			return path, nil, nil, fmt.Errorf("%s has no flag %q", path, a)
		}
		if _, isBool := f.(*cli.BoolFlag); !isBool && !hasValue {
			if i+1 >= len(rest) || strings.HasPrefix(rest[i+1], "--") {
				return path, nil, nil, fmt.Errorf("%s %s needs a value", path, a)
			}
			value = rest[i+1]
			i++
		}
		flags[f.Names()[0]] = value
	}
	for _, f := range cmd.Flags {
		if rf, ok := f.(cli.RequiredFlag); ok && rf.IsRequired() {
			if _, ok := flags[f.Names()[0]]; !ok {
				return path, nil, nil, fmt.Errorf("%s: required flag --%s missing", path, f.Names()[0])
			}
		}
	}
	if _, ok := flags["output"]; outputRequired[path] && !ok {
		return path, nil, nil, fmt.Errorf("%s: -o missing", path)
	}
	if p, ok := flags["preset"]; ok {
		if _, err := convert.LookupPreset(p); err != nil {
			return path, nil, nil, fmt.Errorf("%s --preset: %v", path, err)
		}
	}
	if p, ok := flags["precision"]; ok {
		if _, err := convert.ParseExportPrecision(p); err != nil {
			return path, nil, nil, fmt.Errorf("%s --precision: %v", path, err)
		}
	}
	for _, name := range []string{"batch"} {
		if v, ok := flags[name]; ok {
			if _, err := parseBatches(v); err != nil {
				return path, nil, nil, fmt.Errorf("%s --%s %q: %v", path, name, v, err)
			}
		}
	}
	for _, name := range []string{"max-latency-regression", "max-size-regression", "max-agreement-regression", "min-cosine", "max-top1-drop"} {
		if v, ok := flags[name]; ok {
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return path, nil, nil, fmt.Errorf("%s --%s %q: not a number", path, name, v)
			}
		}
	}
	return path, flags, operands, nil
}

// shardRun is one job of the matrix: its variables and its invocations.
type shardRun struct {
	index, total int
	env          map[string]string
}

func expand(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, k, v)
	}
	// Expressions the test does not model (run ids, tokens) become a word.
	return regexp.MustCompile(`\$\{\{[^}]*\}\}`).ReplaceAllString(s, "X")
}

// checkCIFile checks one example: jobs are the shard values, vars maps
// each to its variable substitutions and environment.
func checkCIFile(t *testing.T, file string, root *yaml.Node, jobs []shardRun, subst func(shardRun) map[string]string) {
	t.Helper()
	app := newApp()
	var scripts []string
	yamlScripts(root, false, &scripts)
	merged, studied, verified := 0, 0, 0
	for _, job := range jobs {
		for _, script := range scripts {
			for _, args := range invocations(expand(script, subst(job))) {
				path, flags, operands, err := checkInvocation(app, args)
				if err != nil {
					t.Errorf("%s: `quantpack %s`: %v", file, strings.Join(args, " "), err)
					continue
				}
				switch path {
				case "study":
					studied++
					sh, err := study.ParseShard(flags["shard"], func(k string) string { return job.env[k] })
					if err != nil {
						t.Errorf("%s: --shard %q: %v", file, flags["shard"], err)
					} else if sh.Index != job.index || sh.Total != job.total {
						t.Errorf("%s: job %d/%d runs --shard %q = %s", file, job.index, job.total, flags["shard"], sh)
					}
					if len(operands) == 0 {
						t.Errorf("%s: study without SRC", file)
					}
				case "study merge":
					merged++
					if len(operands) != job.total {
						t.Errorf("%s: study merge of %d shard directories %v, the matrix has %d", file, len(operands), operands, job.total)
					}
				case "verify":
					verified++
					if len(operands) != 2 {
						t.Errorf("%s: verify %v: want BASELINE CANDIDATE", file, operands)
					}
				}
			}
		}
	}
	if studied != len(jobs) || merged == 0 || verified == 0 {
		t.Errorf("%s: %d study invocations over %d jobs, %d merges, %d verifies: the example lost a step", file, studied, len(jobs), merged, verified)
	}
}

func loadYAML(t *testing.T, path string) *yaml.Node {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &n
}

func TestCIExamplesGitHub(t *testing.T) {
	path := filepath.Join(repoRoot(t), "docs", "ci", "github-actions.yml")
	root := loadYAML(t, path)
	matrix := yamlGet(root, "jobs", "study", "strategy", "matrix", "shard")
	if matrix == nil || matrix.Kind != yaml.SequenceNode {
		t.Fatal("jobs.study.strategy.matrix.shard is not a list")
	}
	var jobs []shardRun
	for i, v := range matrix.Content {
		if v.Value != strconv.Itoa(i+1) {
			t.Fatalf("matrix.shard[%d] = %q, want %d (1-based)", i, v.Value, i+1)
		}
		jobs = append(jobs, shardRun{index: i + 1, total: len(matrix.Content)})
	}
	if yamlGet(root, "jobs", "merge", "needs") == nil || yamlGet(root, "jobs", "merge", "needs").Value != "study" {
		t.Error("the merge job does not wait for the study matrix")
	}
	checkCIFile(t, "github-actions.yml", root, jobs, func(j shardRun) map[string]string {
		return map[string]string{"${{ matrix.shard }}": strconv.Itoa(j.index)}
	})
}

func TestCIExamplesGitLab(t *testing.T) {
	path := filepath.Join(repoRoot(t), "docs", "ci", "gitlab-ci.yml")
	root := loadYAML(t, path)
	par := yamlGet(root, "study", "parallel")
	n, err := strconv.Atoi(par.Value)
	if par == nil || err != nil || n < 2 {
		t.Fatalf("study.parallel = %v", par)
	}
	var jobs []shardRun
	for i := 1; i <= n; i++ {
		jobs = append(jobs, shardRun{index: i, total: n,
			env: map[string]string{study.EnvGitLabIndex: strconv.Itoa(i), study.EnvGitLabTotal: strconv.Itoa(n)}})
	}
	checkCIFile(t, "gitlab-ci.yml", root, jobs, func(j shardRun) map[string]string {
		return map[string]string{"$CI_NODE_INDEX": strconv.Itoa(j.index), "$CI_NODE_TOTAL": strconv.Itoa(j.total)}
	})
}

// TestCIExampleCheckCatches makes sure the checker can fail.
func TestCIExampleCheckCatches(t *testing.T) {
	app := newApp()
	for _, line := range []string{
		"bin/quantpack study models/a -o s --shard-index 1",
		"bin/quantpack study merge s1 s2",
		"bin/quantpack verify a b --baseline-report",
		"bin/quantpack synth --preset no-such-model -o m",
		"bin/quantpack export m --precision int3 -o o",
		"bin/quantpack studdy m -o o",
	} {
		inv := invocations(line)
		if len(inv) != 1 {
			t.Fatalf("%q: %d invocations", line, len(inv))
		}
		if _, _, _, err := checkInvocation(app, inv[0]); err == nil {
			t.Errorf("%q passed the check", line)
		}
	}
	if got := invocations("x && bin/quantpack verify a \\\n  b --json > out.json"); len(got) != 1 || strings.Join(got[0], " ") != "verify a b --json" {
		t.Errorf("continuation/redirect: %q", got)
	}
}
