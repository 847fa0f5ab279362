package fault

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestClassOf(t *testing.T) {
	errCorrupt := New(Invalid, "x: corrupt")
	cases := []struct {
		err  error
		want Class
	}{
		{nil, Other},
		{fmt.Errorf("plain"), Other},
		{errCorrupt, Invalid},
		{fmt.Errorf("file a: %w", errCorrupt), Invalid},
		{fmt.Errorf("wrap: %w", context.Canceled), Interrupted},
		{fmt.Errorf("wrap: %w", ErrGate), Gate},
	}
	for i, c := range cases {
		if got := ClassOf(c.err); got != c.want {
			t.Errorf("%d: ClassOf(%v) = %v, want %v", i, c.err, got, c.want)
		}
	}
}

func TestWithClass(t *testing.T) {
	if WithClass(Usage, nil) != nil {
		t.Error("WithClass(Usage, nil) is not nil")
	}
	errCorrupt := New(Invalid, "x: corrupt")
	cause := fmt.Errorf("flag --n: %w", errCorrupt)
	err := WithClass(Usage, cause)
	if err.Error() != cause.Error() {
		t.Errorf("message %q, want %q", err, cause)
	}
	if !errors.Is(err, errCorrupt) {
		t.Error("errors.Is does not see the wrapped chain")
	}
	if got := ClassOf(err); got != Usage {
		t.Errorf("ClassOf = %v, want usage (the outer class wins)", got)
	}
	if got := ClassOf(fmt.Errorf("context: %w", err)); got != Usage {
		t.Errorf("ClassOf wrapped = %v, want usage", got)
	}
}
