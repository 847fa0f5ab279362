// Command quantpack converts Hugging Face vision checkpoints into quantized
// artifacts, exports them to ONNX and measures them with ONNX Runtime.
//
// Each command lives in its own file (cmd_<name>.go) and registers itself with
// register; the work is done by functions in the library packages. Exit codes
// are mapped in exit.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/internal/atomicfile"
	"github.com/quantpack/quantpack/internal/fault"
	"github.com/quantpack/quantpack/internal/version"
)

var commands []*cli.Command

// register adds a command to the application; cmd_*.go files call it from init.
func register(c *cli.Command) { commands = append(commands, c) }

func newApp() *cli.App {
	cmds := append([]*cli.Command(nil), commands...)
	addHubFlags(cmds)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError(err) }
	// urfave/cli v2 does not pass the app's OnUsageError down to commands.
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = onUsage
		}
		// "(default: false)" after every switch is noise: a switch is off
		// unless given. Switches that default to on keep "(default: true)".
		for _, f := range c.Flags {
			if bf, ok := f.(*cli.BoolFlag); ok && !bf.Value {
				bf.DisableDefaultText = true
			}
		}
	}
	return &cli.App{
		Name:    "quantpack",
		Usage:   "quantize Hugging Face vision checkpoints and measure them in ONNX Runtime",
		Version: version.Version,
		Description: `quantpack turns a Hugging Face vision checkpoint (safetensors + config.json)
into FP16, BF16, INT8, INT4 or NF4 artifacts, exports ONNX graphs, and measures
latency, throughput, memory and accuracy against the FP32 baseline.

Typical flow:
   quantpack synth --preset deit-tiny-patch16-224 -o deit-tiny
   quantpack convert deit-tiny -o deit-tiny-nf4 --precision nf4
   quantpack export deit-tiny -o onnx-fp32 --precision fp32
   quantpack export deit-tiny -o onnx-int8 --precision int8
   quantpack verify onnx-fp32 onnx-int8 --min-cosine 0.99
   quantpack study deit-tiny -o report        # every precision at once

` + exitCodeHelp,
		Commands:             cmds,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		ExitErrHandler:       func(*cli.Context, error) {}, // we map errors ourselves
		OnUsageError:         onUsage,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q; `quantpack --help` lists them", c.Args().First())
			}
			// No command is a usage mistake (exit 2): the help goes to
			// stderr, so a script's stdout stays empty; --help is exit 0.
			c.App.Writer = c.App.ErrWriter
			if err := cli.ShowAppHelp(c); err != nil {
				return err
			}
			return usagef("no command given; the commands are listed above")
		},
	}
}

func main() {
	os.Exit(run(os.Args))
}

// run executes the CLI and returns the process exit code. SIGINT and SIGTERM
// cancel the context; commands stop at the next tensor or file boundary, and
// any temporary file still open is removed before exiting with 130.
func run(args []string) int {
	atomicfile.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "quantpack: "+format+"\n", args...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	finished := make(chan struct{})
	defer close(finished)
	go watchSignals(ctx, stop, finished, shutdownGrace, func() {
		atomicfile.RemoveAll()
		fmt.Fprintln(os.Stderr, "quantpack: interrupted; temporary files removed")
		os.Exit(ExitInterrupted)
	})
	app := newApp()
	err := app.RunContext(ctx, interspersed(app.Commands, args))
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("interrupted: %w (%v)", context.Canceled, err)
	} else if err != nil && errors.Is(err, context.Canceled) {
		err = errSignal
	}
	atomicfile.RemoveAll()
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quantpack: %v\n", err)
	}
	return code
}

// shutdownGrace is how long a command has, after the first SIGINT/SIGTERM,
// to reach its next cancellation check (a tensor or file boundary, well under
// a second) before the process ends anyway: a call blocked in the kernel
// never reaches one, and the first signal must always end the process.
const shutdownGrace = 3 * time.Second

// watchSignals waits for ctx (cancelled by the first signal) and then calls
// exit when a second signal arrives or grace passes, whichever is first;
// it returns without calling exit once finished is closed (the command
// returned and run maps its error itself).
func watchSignals(ctx context.Context, stop func(), finished <-chan struct{}, grace time.Duration, exit func()) {
	select {
	case <-ctx.Done():
	case <-finished:
		return
	}
	stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-sigs:
	case <-timer.C:
	case <-finished:
		return
	}
	select {
	case <-finished: // the command returned meanwhile: run reports it
	default:
		exit()
	}
}

// errSignal reports a run stopped by SIGINT/SIGTERM (exit 130).
var errSignal = fault.New(fault.Interrupted, "interrupted by signal; temporary files removed")
