// Package human formats byte sizes and counts for people to read. The
// command line's summaries and the model cards convert and export write use
// it, so that a size reads the same in both.
package human

import "fmt"

// Bytes formats n bytes in binary units with one decimal: "512 B",
// "1.5 KiB", "330.2 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Count formats a count such as a number of parameters in decimal units:
// "950", "5.7K", "86.57M", "1.20B".
func Count(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprintf("%d", n)
}
