package convert

// Switch is an on/off option whose zero value leaves the choice to the
// default, so that a caller who says nothing and a caller who says "off"
// can be told apart. The defaults themselves are decided in
// Options.withDefaults.
type Switch int8

// Switch values.
const (
	SwitchDefault Switch = iota // the option's default
	SwitchOn
	SwitchOff
)

// SwitchOf is SwitchOn for true and SwitchOff for false.
func SwitchOf(on bool) Switch {
	if on {
		return SwitchOn
	}
	return SwitchOff
}

// withDefaults returns o with every option left at its zero value replaced
// by its default. It is the one place convert's defaults are decided:
// Convert, Export's own conversion and study all pass through it, and the
// flag parsers pass on only what the user set. Validate first: validation
// sees what the caller asked for, not the defaults.
func (o Options) withDefaults() Options {
	if o.DoubleQuant == SwitchDefault && o.Precision == NF4 {
		o.DoubleQuant = SwitchOn // bitsandbytes' and transformers' usual nf4 setting
	}
	return o
}

// doubleQuant reports whether nf4 absmax values are quantized too.
func (o *Options) doubleQuant() bool { return o.DoubleQuant == SwitchOn }
