//go:build race

package console_test

// raceEnabled is true under -race, which makes pure-Go SQLite some thirty
// times slower: a timing taken then measures the race detector.
const raceEnabled = true
