package main

import (
	"errors"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/internal/fault"
)

// Exit codes. They are part of the CLI contract (docs/cli.md) and documented
// in the README and in `quantpack --help`.
const (
	ExitOK          = 0
	ExitOther       = 1
	ExitUsage       = 2
	ExitInvalid     = 3
	ExitUnsupported = 4
	ExitGate        = 5
	ExitRuntime     = 6
	ExitInterrupted = 130
)

const exitCodeHelp = `Exit codes:
   0    ok
   1    other error
   2    usage (bad flag or argument)
   3    input invalid or corrupt
   4    unsupported (architecture, dtype, operator)
   5    a quality gate failed
   6    runtime unavailable (no ONNX Runtime library, no CUDA)
   130  interrupted (SIGINT/SIGTERM); temporary files are removed`

// usageError marks err as a command-line mistake (exit 2).
func usageError(err error) error { return fault.WithClass(fault.Usage, err) }

// usagef returns a usage error (exit 2).
func usagef(format string, args ...any) error {
	return usageError(cliError(format, args...))
}

func cliError(format string, args ...any) error {
	return cli.Exit(sprintf(format, args...), ExitUsage)
}

// exitCode maps an error to the process exit status, in one place.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	switch fault.ClassOf(err) {
	case fault.Usage:
		return ExitUsage
	case fault.Invalid:
		return ExitInvalid
	case fault.Unsupported:
		return ExitUnsupported
	case fault.Gate:
		return ExitGate
	case fault.Runtime:
		return ExitRuntime
	case fault.Interrupted:
		return ExitInterrupted
	}
	// urfave/cli reports unknown flags and commands as plain errors; treat
	// those it marks with an exit code as usage errors.
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() == ExitUsage {
		return ExitUsage
	}
	// urfave/cli reports missing required flags with an unexported error
	// type; its message is the only handle on it.
	if strings.HasPrefix(err.Error(), "Required flag") {
		return ExitUsage
	}
	return ExitOther
}
