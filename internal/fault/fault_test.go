package fault

import (
	"context"
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
