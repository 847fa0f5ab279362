package main

import (
	"github.com/urfave/cli/v2"

	"github.com/quantpack/quantpack/convert"
)

// switchFlag passes a boolean flag on only when the user set it, so the
// package that owns the option decides its default (convert.Options'
// withDefaults), not the flag's declaration.
func switchFlag(c *cli.Context, name string) convert.Switch {
	if !c.IsSet(name) {
		return convert.SwitchDefault
	}
	return convert.SwitchOf(c.Bool(name))
}

// optFloat is a float flag's value, or nil when the user did not set it (a
// gate or constraint that is off).
func optFloat(c *cli.Context, name string) *float64 {
	if !c.IsSet(name) {
		return nil
	}
	v := c.Float64(name)
	return &v
}
