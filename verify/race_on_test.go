//go:build race

package verify

// raceEnabled: the race detector keeps shadow memory beside every heap
// byte a goroutine touches, so a child that touches N MiB holds about 2N.
const raceEnabled = true
