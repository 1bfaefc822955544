//go:build !linux

package imagespec

const noAtime = 0
