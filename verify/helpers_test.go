package verify

import (
	"testing"

	"github.com/quantpack/quantpack/internal/testenv"
)

// fixtureDir returns ../shared/fixtures/<sub>, skipping (failing in CI) when absent.
func fixtureDir(t testing.TB, sub string) string { return testenv.Fixtures(t, sub) }
