package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves a command's positional arguments after its flags.
//
// The CLI contract writes flags after operands (`convert SRC -o OUT`), but
// urfave/cli v2 stops parsing flags at the first operand. Knowing each
// command's flags, we can tell a flag's value from an operand and reorder
// safely; "--" still ends flag parsing.
func interspersed(cmds []*cli.Command, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Global flags (--help, --version) come before the command name.
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++
	}
	if i >= len(args) {
		return args
	}
	var cmd *cli.Command
	for _, c := range cmds {
		if c.Name == args[i] || slices.Contains(c.Aliases, args[i]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	// A subcommand (study merge) right after the command: its flags apply.
	for i+1 < len(args) {
		var sub *cli.Command
		for _, c := range cmd.Subcommands {
			if c.Name == args[i+1] || slices.Contains(c.Aliases, args[i+1]) {
				sub = c
			}
		}
		if sub == nil {
			break
		}
		cmd = sub
		i++
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	out := append([]string{}, args[:i+1]...)
	var operands []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			operands = append(operands, rest[j+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			operands = append(operands, a)
			continue
		}
		out = append(out, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && j+1 < len(rest) {
			out = append(out, rest[j+1])
			j++
		}
	}
	if len(operands) > 0 {
		out = append(out, "--")
		out = append(out, operands...)
	}
	return out
}
