// Package version holds the tool version recorded in every manifest.
package version

// Version is quantpack's version. Release builds override it with
// -ldflags "-X github.com/quantpack/quantpack/internal/version.Version=...".
var Version = "0.1.0-dev"
