// Package units formats byte counts the one way every command prints them.
package units

import "fmt"

// Bytes prints a byte count in KiB (below 1 MiB), MiB or GiB.
func Bytes(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	if n >= 10<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
