package workload

import (
	"fmt"
	"os"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/rootpath"
)

// Process is the workload as it is started: the merged spec, the user's
// credentials, and the command's path inside the root.
type Process struct {
	imagespec.Spec
	Cred  Credential
	Argv0 string // Argv[0] resolved inside the root
}

// Resolve decides what runs in root, as `docker run` would run its image:
// the image config with the overrides applied in order (a run document,
// then the kernel command line), the user from the image's
// own passwd and group files, HOME from the user and TERM=linux when the
// image sets neither, the working directory made when missing (Docker does
// the same), and the command looked up on the workload's PATH. Its errors
// are *StartError with the shell's status where the command is missing or
// cannot run.
func Resolve(root string, overrides ...imagespec.Override) (Process, error) {
	img, err := imagespec.ReadImage(root)
	if err != nil {
		return Process{}, err
	}
	spec, err := imagespec.Merge(img, overrides...)
	if err != nil {
		return Process{}, err
	}
	cred, err := ResolveUser(root, spec.User)
	if err != nil {
		return Process{}, err
	}
	if _, ok := imagespec.Getenv(spec.Env, "HOME"); !ok {
		spec.Env = append(spec.Env, "HOME="+cred.Home)
	}
	if _, ok := imagespec.Getenv(spec.Env, "TERM"); !ok {
		spec.Env = append(spec.Env, "TERM=linux")
	}
	if spec.WorkingDir == "" {
		spec.WorkingDir = "/"
	}
	dir, err := rootpath.Resolve(root, spec.WorkingDir)
	if err != nil {
		return Process{}, fmt.Errorf("working directory %s: %w", spec.WorkingDir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Process{}, fmt.Errorf("working directory %s: %w", spec.WorkingDir, err)
	}
	argv0, err := LookPath(root, spec.Argv[0], spec.Env, spec.WorkingDir)
	if err != nil {
		return Process{}, err
	}
	return Process{Spec: spec, Cred: cred, Argv0: argv0}, nil
}
