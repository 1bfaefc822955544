//go:build tools

// This file pins the u-root commands that uroot.json builds into the images, so
// that go.mod and go.sum carry every module they need and `go tool u-root`
// builds the same binary everywhere. It is never compiled.
package ginit

import (
	_ "github.com/u-root/u-root/cmds/core/gosh"
)
