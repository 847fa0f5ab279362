package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
