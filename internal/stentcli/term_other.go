//go:build !unix

package stentcli

import "os"

// termWidth is 0 (unknown) where the window size cannot be asked: set
// COLUMNS.
func termWidth(*os.File) int { return 0 }
