package main

import (
	"fmt"

	"github.com/quantpack/quantpack/convert"
)

// The 4-bit defaults as the help shows them, taken from convert's constants
// (convert/options.go decides them) so that --help cannot drift from what
// runs. TestHelpDefaultsFromConvert fails on a number or method written
// into a help string by hand.
var (
	blockSizeDefault = fmt.Sprintf("%d for int4 (per tensor, smaller where a layer's input width is not a multiple), %d for nf4",
		convert.DefaultInt4Block, convert.DefaultNF4Block)
	methodDefault = fmt.Sprintf("%s for int4, %s for nf4", convert.DefaultInt4Method, convert.DefaultNF4Method)
	// awq's base method is written "M (int4), M (nf4)" so that it is not
	// read as the --method default.
	awqBaseDefault  = fmt.Sprintf("%s (int4), %s (nf4)", convert.DefaultAWQBaseInt4, convert.DefaultAWQBaseNF4)
	int4DefaultText = fmt.Sprintf("The default for int4 is block %d with %s", convert.DefaultInt4Block, convert.DefaultInt4Method)
)
