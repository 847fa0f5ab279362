package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/quantpack/quantpack/internal/fault"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{usagef("bad flag"), 2},
		{fault.New(fault.Invalid, "corrupt"), 3},
		{fmt.Errorf("a: %w", fault.New(fault.Unsupported, "arch")), 4},
		{fault.ErrGate, 5},
		{fault.New(fault.Runtime, "no ort"), 6},
		{context.Canceled, 130},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestUnknownCommandIsUsage(t *testing.T) {
	if code := run([]string{"quantpack", "no-such-command"}); code != ExitUsage {
		t.Fatalf("exit %d", code)
	}
	if code := run([]string{"quantpack", "--no-such-flag"}); code != ExitUsage {
		t.Fatalf("unknown flag: exit %d, want %d", code, ExitUsage)
	}
}

func TestInterspersed(t *testing.T) {
	app := newApp()
	got := interspersed(app.Commands, []string{"quantpack", "convert", "src", "-o", "out", "--precision", "nf4", "--json", "--keep=a*"})
	want := []string{"quantpack", "convert", "-o", "out", "--precision", "nf4", "--json", "--keep=a*", "--", "src"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// A value that looks like an operand stays with its flag; -- ends flags.
	got = interspersed(app.Commands, []string{"quantpack", "convert", "--threads", "2", "a", "--", "-weird"})
	want = []string{"quantpack", "convert", "--threads", "2", "--", "a", "-weird"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestMissingRequiredFlagIsUsage(t *testing.T) {
	if code := run([]string{"quantpack", "convert", "somewhere"}); code != ExitUsage {
		t.Fatalf("convert without -o: exit %d, want %d", code, ExitUsage)
	}
}

// Issue 17 case 9: after the first signal the process ends within the grace
// period even when the command never reaches a cancellation check (a read
// blocked in the kernel), and never once the command has returned.
func TestWatchSignalsEndsBlockedCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go watchSignals(ctx, func() {}, make(chan struct{}), 50*time.Millisecond, func() { close(exited) })
	cancel() // the first signal; the command never returns
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("first signal did not end a command that never returned")
	}

	ctx, cancel = context.WithCancel(context.Background())
	finished := make(chan struct{})
	called := make(chan struct{}, 1)
	go watchSignals(ctx, func() {}, finished, 50*time.Millisecond, func() { called <- struct{}{} })
	cancel()
	close(finished) // the command stopped at its next check
	select {
	case <-called:
		t.Error("exit called although the command returned")
	case <-time.After(200 * time.Millisecond):
	}
}

// Issue 17 case 14: flag values that cannot be meant are usage errors (they
// used to be accepted: a NaN gate passed every run, --asymmetric was ignored
// at fp16, --shard-bytes -1 was taken).
func TestNonsenseFlagValuesAreUsage(t *testing.T) {
	dir := t.TempDir()
	cases := [][]string{
		{"verify", dir, dir, "--min-cosine", "NaN"},
		{"verify", dir, dir, "--min-cosine", "1.5"},
		{"verify", dir, dir, "--max-top1-drop", "-1"},
		{"verify", dir, dir, "--min-speedup", "-2"},
		{"verify", dir, dir, "--max-size-ratio", "0"},
		{"verify", dir, dir, "--max-latency-ms", "Inf"},
		{"convert", dir, "-o", dir + "/o", "-p", "int8", "--shard-bytes", "-1"},
		{"convert", dir, "-o", dir + "/o", "-p", "fp16", "--asymmetric"},
		{"export", dir, "-o", dir + "/o", "-p", "fp32", "--asymmetric"},
		{"unpack", dir + "/b.tar.zst", "-o", dir + "/o", "--max-ratio", "0"},
		{"check", dir + "/b.tar.zst", "--max-ratio", "NaN"},
	}
	for _, args := range cases {
		if code := run(append([]string{"quantpack"}, args...)); code != ExitUsage {
			t.Errorf("quantpack %v: exit %d, want %d", args, code, ExitUsage)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("usage errors left %d entries", len(ents))
	}
}
