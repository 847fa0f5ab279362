package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// fileCount is how pack, unpack and check count an artifact's files in
// their one-line reports: the files quantpack.json lists, plus the manifest
// itself, so the same bundle gives the same number in all three.
func fileCount(listed int) string {
	return fmt.Sprintf("%d files + quantpack.json", listed)
}

// listedFiles is the number of artifact files in a count that includes the
// manifest and, from bundle format 2 on, the provenance statement.
func listedFiles(total int, provenance bool) int {
	if provenance {
		total--
	}
	return total - 1
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// printJSON writes v as indented JSON followed by a newline.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stderrIsTerminal reports whether progress bars should be drawn.
func stderrIsTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }
