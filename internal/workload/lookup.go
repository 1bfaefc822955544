// Package workload decides what ginit runs in the root disk, as `docker run`
// would run the image: the image's config merged with the run's overrides
// (imagespec's rules), the command resolved inside the root, and the user
// resolved from the image's own /etc/passwd and /etc/group.
package workload

import (
	"errors"
	"fmt"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/rootpath"

	"os"
	"path"

	"strconv"
	"strings"
)

// LookPath finds the command name inside root, using the PATH in env, and
// returns its path as seen inside root. A name with a slash is taken as it is
// (relative to workdir).
func LookPath(root, name string, env []string, workdir string) (string, error) {
	if name == "" {
		return "", &imagespec.StartError{Path: name, Code: imagespec.ExitNotFound, Err: errors.New("empty command")}
	}
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join("/", workdir, p)
		}
		if err := checkExecutable(root, p); err != nil {
			return "", err
		}
		return p, nil
	}
	pathVar, ok := imagespec.Getenv(env, "PATH")
	if !ok {
		pathVar = imagespec.DefaultPath
	}
	var firstErr error
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join("/", dir, name)
		err := checkExecutable(root, p)
		if err == nil {
			return p, nil
		}
		var se *imagespec.StartError
		if errors.As(err, &se) && se.Code == imagespec.ExitNotExecutable && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", &imagespec.StartError{Path: name, Code: imagespec.ExitNotFound, Err: fmt.Errorf("not found in PATH %s", pathVar)}
}

func checkExecutable(root, p string) error {
	host, err := rootpath.Resolve(root, p)
	if err != nil {
		return &imagespec.StartError{Path: p, Code: imagespec.ExitNotFound, Err: err}
	}
	fi, err := os.Stat(host)
	if err != nil {
		return &imagespec.StartError{Path: p, Code: imagespec.ExitNotFound, Err: errors.New("no such file")}
	}
	if fi.IsDir() {
		return &imagespec.StartError{Path: p, Code: imagespec.ExitNotExecutable, Err: errors.New("is a directory")}
	}
	if fi.Mode()&0o111 == 0 {
		return &imagespec.StartError{Path: p, Code: imagespec.ExitNotExecutable, Err: errors.New("permission denied: not executable")}
	}
	return nil
}

// Credential is who the workload runs as.
type Credential struct {
	UID, GID uint32
	Groups   []uint32
	Home     string
}

// ResolveUser resolves Docker's User forms (name, uid, name:group, uid:gid)
// against root's /etc/passwd and /etc/group. An empty user is root.
func ResolveUser(root, user string) (Credential, error) {
	cred := Credential{Home: "/root"}
	if user == "" {
		return cred, nil
	}
	userPart, groupPart, hasGroup := strings.Cut(user, ":")
	passwd := readColonFile(root, "/etc/passwd")
	groups := readColonFile(root, "/etc/group")

	found := false
	var name string
	for _, f := range passwd {
		if len(f) < 6 {
			continue
		}
		if f[0] == userPart || f[2] == userPart {
			uid, err1 := strconv.ParseUint(f[2], 10, 32)
			gid, err2 := strconv.ParseUint(f[3], 10, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			cred.UID, cred.GID, cred.Home, name = uint32(uid), uint32(gid), f[5], f[0]
			found = true
			break
		}
	}
	if !found {
		uid, err := strconv.ParseUint(userPart, 10, 32)
		if err != nil {
			return cred, fmt.Errorf("user %q: no such user in the image's /etc/passwd", userPart)
		}
		cred.UID, cred.GID, cred.Home = uint32(uid), uint32(uid), "/"
		if uid == 0 {
			cred.Home = "/root"
		}
		if !hasGroup {
			cred.GID = 0 // Docker runs a bare unknown uid with gid 0
		}
	}
	if hasGroup {
		gid, ok := lookupGroup(groups, groupPart)
		if !ok {
			return cred, fmt.Errorf("group %q: no such group in the image's /etc/group", groupPart)
		}
		cred.GID = gid
	}
	if name != "" {
		for _, f := range groups {
			if len(f) < 4 {
				continue
			}
			for _, member := range strings.Split(f[3], ",") {
				if member != name {
					continue
				}
				if gid, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(gid) != cred.GID {
					cred.Groups = append(cred.Groups, uint32(gid))
				}
			}
		}
	}
	return cred, nil
}

func lookupGroup(groups [][]string, g string) (uint32, bool) {
	for _, f := range groups {
		if len(f) >= 3 && (f[0] == g || f[2] == g) {
			if gid, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				return uint32(gid), true
			}
		}
	}
	if gid, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(gid), true
	}
	return 0, false
}

// readColonFile reads a passwd-style file inside root; a missing file reads
// as empty, as it does for Docker.
func readColonFile(root, p string) [][]string {
	host, err := rootpath.Resolve(root, p)
	if err != nil {
		return nil
	}
	b, err := imagespec.ReadRootFile(host)
	if err != nil {
		return nil
	}
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
