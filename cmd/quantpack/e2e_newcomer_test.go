package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/quantpack/quantpack/verify/ort/orttest"
)

// testE2ENewcomer covers what a new user met in their first hour (issue
// 12): missing inputs, outputs written with a trailing slash, messages that
// named the wrong command or repeated themselves, counts that disagreed,
// and the small gaps of export --check, --device cuda and synth --list.
func testE2ENewcomer(t *testing.T, vit string) {
	t.Run("missing-input", func(t *testing.T) { testMissingInput(t, vit) })
	t.Run("trailing-slash", func(t *testing.T) { testTrailingSlash(t, vit) })
	t.Run("messages", func(t *testing.T) { testNewcomerMessages(t, vit) })
	t.Run("gaps", func(t *testing.T) { testNewcomerGaps(t, vit) })
	t.Run("readme-check", testReadmeCheck)
}

// scripts/readme-check.sh passes a README whose commands exit as it says,
// and fails, naming the line, on one that does not; skipped blocks and
// other languages' blocks are not run.
func testReadmeCheck(t *testing.T) {
	for _, tool := range []string{"bash", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "readme-check.sh"))
	if err != nil {
		t.Fatal(err)
	}
	const good = "# t\n\n<!-- readme-check: skip -->\n```sh\nfalse\n```\n\n```sh\n" +
		"quantpack synth --list --json | jq -e '.presets | length > 0'\n" +
		"quantpack inspect nope   # exit 3\n" +
		"echo two \\\n  lines\n```\n\n```json\n{\"not\": \"run\"}\n```\n"
	run := func(readme string) e2eResult {
		f := filepath.Join(t.TempDir(), "README.md")
		if err := os.WriteFile(f, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", script, f)
		cmd.Env = e2eEnv("QUANTPACK_BIN=" + e2eBinary(t))
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return e2eResult{args: []string{"readme-check"}, code: code, stderr: string(out)}
	}
	if r := run(good); r.code != 0 || !strings.Contains(r.stderr, "3 commands") {
		t.Errorf("a true README: exit %d, want 0 and 3 commands run:\n%s", r.code, r.stderr)
	}
	// A command that fails without "# exit N", and one that exits with
	// another status than its marker says.
	run(good+"```sh\nquantpack inspect nope\n```\n").wantCode(t, 1, "README line 19", "exit 3, the README expects 0")
	run(strings.Replace(good, "# exit 3", "# exit 4", 1)).wantCode(t, 1, "README line 10", "expects 4")
}

// oneLine fails unless stderr is exactly one "quantpack: CMD: ..." line:
// the message names the command and nothing else is printed around it.
func (r e2eResult) oneLine(t testing.TB, cmd string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "quantpack: "+cmd+": ") {
		t.Errorf("quantpack %s: stderr is not one \"quantpack: %s: ...\" line:\n%s", strings.Join(r.args, " "), cmd, r.stderr)
	}
}

// A path that is not there: exit 3 from every command, one message shape
// naming the command, the argument and the path. A Hub id says so.
func testMissingInput(t *testing.T, vit string) {
	dir := t.TempDir()
	nope := filepath.Join(dir, "nope")
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		cmd, arg string
		args     []string
	}{
		{"inspect", "PATH", []string{"inspect", nope}},
		{"convert", "SRC", []string{"convert", nope, "-o", out, "--precision", "int8"}},
		{"export", "SRC", []string{"export", nope, "-o", out, "--precision", "fp32"}},
		{"verify", "BASELINE", []string{"verify", nope, vit}},
		{"verify", "CANDIDATE", []string{"verify", vit, nope}},
		{"verify", "--images", []string{"verify", vit, vit, "--images", nope}},
		{"verify", "--labels", []string{"verify", vit, vit, "--labels", nope}},
		{"study", "SRC", []string{"study", vit, nope, "-o", out}},
		{"study", "--images", []string{"study", vit, "-o", out, "--images", nope}},
		{"pack", "DIR", []string{"pack", nope, "-o", out}},
		{"unpack", "FILE", []string{"unpack", nope, "-o", out}},
		{"check", "PATH", []string{"check", nope}},
	} {
		r := qp(t, c.args...)
		r.wantCode(t, ExitInvalid, c.cmd, c.arg, nope, "no such file or directory")
		r.oneLine(t, c.cmd)
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s with a missing %s wrote %s", c.cmd, c.arg, out)
		}
	}
	// Run from an empty directory, so the id cannot be a local path: it is
	// looked up on the Hub (offline here, with an empty cache), and the
	// message still names the command, the argument and the id.
	hub := "google/vit-base-patch16-224"
	r := qpRun(t, dir, []string{"HF_HUB_OFFLINE=1", "HF_HUB_CACHE=" + t.TempDir()}, "convert", hub, "-o", out, "--precision", "nf4")
	r.wantCode(t, ExitOther, "SRC", hub, "offline")
	r.oneLine(t, "convert")
	// A command that takes local paths only says what the id looks like.
	r = qpIn(t, dir, "check", hub)
	r.wantCode(t, ExitInvalid, hub, "Hugging Face Hub id")
	r.oneLine(t, "check")
}

// Every command that takes -o accepts it with a trailing slash and with
// "./" and "//" in it, writes the clean path, leaves nothing beside it,
// and a later command finds the output the same way.
func testTrailingSlash(t *testing.T, vit string) {
	root := t.TempDir()
	slash := func(rel string) string { return root + "/" + rel }
	qp(t, "convert", vit, "-o", slash("conv/out/"), "--precision", "int8").ok(t)
	qp(t, "check", slash("conv/out/")).ok(t)
	qp(t, "export", vit, "-o", slash("./exp//out/"), "--precision", "fp32").ok(t)
	qp(t, "check", slash("exp/out/")).ok(t)
	qp(t, "synth", "--preset", "mobilevit-xx-small", "-o", slash("synth/out/")).ok(t)
	qp(t, "pack", slash("conv/out/"), "-o", slash("pack/./b.tar.zst")).ok(t)
	for _, rel := range []string{"deploy/", "sub/deploy/", "./deploy2/"} {
		qp(t, "unpack", slash("pack/b.tar.zst"), "-o", slash(rel)).ok(t)
		qp(t, "check", slash(rel)).ok(t)
		sameTree(t, slash("conv/out"), slash(rel))
	}
	for _, d := range []string{"conv", "exp", "synth", "pack", "sub"} {
		if ents, _ := os.ReadDir(slash(d)); len(ents) != 1 {
			t.Errorf("%s holds %d entries, want only the output", slash(d), len(ents))
		}
	}
	t.Run("study", func(t *testing.T) {
		orttest.Require(t)
		rep := slash("study/report/")
		qp(t, "study", vit, "-o", rep, "--precisions", "fp32", "--iters", "1", "--warmup", "0", "--no-memory").ok(t)
		if _, err := os.Stat(filepath.Join(rep, "report.md")); err != nil {
			t.Error(err)
		}
	})
}

func testNewcomerMessages(t *testing.T, vit string) {
	dir := t.TempDir()
	art, bundle := filepath.Join(dir, "art"), filepath.Join(dir, "b.tar.zst")
	qp(t, "convert", vit, "-o", art, "--precision", "int8").ok(t)

	// pack, check and unpack count the same bundle the same way.
	t.Run("counts", func(t *testing.T) { newcomerCounts(t, dir, art, bundle) })
	t.Run("pack-force", func(t *testing.T) { newcomerPackForce(t, art, bundle) })
	t.Run("check-dir", func(t *testing.T) { newcomerCheckDir(t, art) })
	t.Run("occupied", func(t *testing.T) { newcomerOccupied(t, vit) })
	t.Run("bf16", func(t *testing.T) { newcomerBF16(t, dir, vit) })
	t.Run("bare", func(t *testing.T) {
		// A bare quantpack is a usage mistake: help on stderr, exit 2.
		r := qp(t)
		r.wantCode(t, ExitUsage, "COMMANDS:", "convert")
		if len(r.stdout) != 0 {
			t.Errorf("bare quantpack wrote to stdout:\n%s", r.stdout)
		}
	})
}

func newcomerCounts(t *testing.T, dir, art, bundle string) {
	counts := regexp.MustCompile(`\d+ files \+ quantpack\.json`)
	var seen []string
	for _, args := range [][]string{
		{"pack", art, "-o", bundle}, {"check", bundle}, {"unpack", bundle, "-o", filepath.Join(dir, "un")}, {"check", art},
	} {
		r := qp(t, args...).ok(t)
		seen = append(seen, counts.FindString(string(r.stdout)))
	}
	for _, s := range seen {
		if s == "" || s != seen[0] {
			t.Errorf("pack, check, unpack, check DIR count files differently: %q", seen)
			break
		}
	}
}

// pack does not overwrite a file unless told to.
func newcomerPackForce(t *testing.T, art, bundle string) {
	if _, err := os.Stat(bundle); err != nil {
		qp(t, "pack", art, "-o", bundle).ok(t)
	}
	before := fileHash(t, bundle)
	if err := os.WriteFile(filepath.Join(art, "extra.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	qp(t, "pack", art, "-o", bundle).wantCode(t, ExitUsage, bundle, "--force")
	if fileHash(t, bundle) != before {
		t.Errorf("a refused pack changed %s", bundle)
	}
	qp(t, "pack", art, "-o", bundle, "--force").ok(t)
	if fileHash(t, bundle) == before {
		t.Errorf("pack --force did not replace %s", bundle)
	}
}

// check DIR says "files differ" once, then the first difference.
func newcomerCheckDir(t *testing.T, art string) {
	if err := os.WriteFile(filepath.Join(art, "extra.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := qp(t, "check", art)
	r.wantCode(t, ExitInvalid, "extra.txt: not in manifest")
	if n := strings.Count(r.stderr, "differ from manifest"); n != 1 {
		t.Errorf("check DIR says \"differ from manifest\" %d times:\n%s", n, r.stderr)
	}
}

// An occupied -o: no command names another one.
func newcomerOccupied(t *testing.T, vit string) {
	occupied := t.TempDir()
	if err := os.WriteFile(filepath.Join(occupied, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"synth", "--preset", "deit-tiny-patch16-224"},
		{"export", vit, "--precision", "fp32"},
		{"convert", vit, "--precision", "int8"},
	} {
		r := qp(t, append(args, "-o", occupied+"/")...)
		r.wantCode(t, ExitUsage, occupied, "occupied")
		for _, other := range []string{"convert:", "export:", "synth:"} {
			if strings.Contains(r.stderr, other) {
				t.Errorf("%s names %q:\n%s", args[0], other, r.stderr)
			}
		}
	}
}

// bf16 is a precision export knows and declines, with what to do.
func newcomerBF16(t *testing.T, dir, vit string) {
	r := qp(t, "export", vit, "-o", filepath.Join(dir, "bf"), "--precision", "bf16")
	r.wantCode(t, ExitUsage, "bf16", "fp16")
	if strings.Contains(r.stderr, "unknown precision") {
		t.Errorf("export --precision bf16 says unknown precision:\n%s", r.stderr)
	}
}

func testNewcomerGaps(t *testing.T, vit string) {
	// synth --list --json: one object with snake_case keys.
	t.Run("synth-list", func(t *testing.T) {
		m := qp(t, "synth", "--list", "--json").ok(t).json(t)
		ps, _ := m["presets"].([]any)
		if len(ps) == 0 {
			t.Fatalf("synth --list --json has no presets array: %v", m)
		}
		for _, p := range ps {
			obj, _ := p.(map[string]any)
			for _, k := range []string{"name", "repo", "architecture", "params"} {
				if s, _ := obj[k].(string); s == "" {
					t.Errorf("preset %v has no %q", obj, k)
				}
			}
		}
	})

	t.Run("runtime", func(t *testing.T) {
		orttest.Require(t)
		dir := t.TempDir()
		e32 := filepath.Join(dir, "e32")
		// export --check says what ran and what came out.
		r := qp(t, "export", vit, "-o", e32, "--precision", "fp32", "--check").ok(t)
		check := regexp.MustCompile(`check .*ONNX Runtime \S+ ran one batch: pixel_values \[1 3 \d+ \d+\] → \w+ \[1 \d+`)
		if !check.Match(r.stdout) {
			t.Errorf("export --check does not say what ran:\n%s", r.stdout)
		}
		// --device cuda without CUDA: our message only, no ORT log line.
		r = qp(t, "verify", e32, e32, "--device", "cuda", "--no-memory", "--iters", "1", "--warmup", "0")
		if r.code == 0 {
			t.Skip("this machine has CUDA: the error path is not reachable")
		}
		r.wantCode(t, ExitRuntime)
		if strings.Contains(r.stderr, "\x1b") || strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") > 0 {
			t.Errorf("--device cuda printed more than its one message:\n%q", r.stderr)
		}
	})
}
