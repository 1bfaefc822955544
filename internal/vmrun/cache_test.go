package vmrun

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// A dir's key changes with anything the disk would hold: a name, a mode,
// a time, the content, a link's target.
func TestHashDir(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", "one")
	if err := os.Symlink("a", filepath.Join(root, "l")); err != nil {
		t.Fatal(err)
	}
	key := func() string {
		k, err := hashDir(root)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	seen := map[string]string{key(): "first"}
	if k := key(); seen[k] != "first" {
		t.Errorf("hashDir is not stable")
	}
	when := time.Unix(1700000000, 0)
	for _, change := range []struct {
		what string
		do   func() error
	}{
		{"content", func() error { write("a", "two"); return nil }},
		{"size", func() error { write("a", "three"); return nil }},
		{"mode", func() error { return os.Chmod(filepath.Join(root, "a"), 0o600) }},
		{"time", func() error { return os.Chtimes(filepath.Join(root, "a"), when, when) }},
		{"name", func() error { return os.Rename(filepath.Join(root, "a"), filepath.Join(root, "b")) }},
		{"link", func() error {
			os.Remove(filepath.Join(root, "l"))
			return os.Symlink("b", filepath.Join(root, "l"))
		}},
	} {
		if err := change.do(); err != nil {
			t.Fatal(err)
		}
		k := key()
		if prev, ok := seen[k]; ok {
			t.Errorf("after the %s changed the key is the one of %s", change.what, prev)
		}
		seen[k] = change.what
	}
	if !strings.HasPrefix(key(), "sha256-") {
		t.Errorf("key %q; want sha256-HEX", key())
	}
}

func TestImageKeyTar(t *testing.T) {
	tar := filepath.Join(t.TempDir(), "root.tar")
	if err := os.WriteFile(tar, []byte("not really a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, src, err := ImageKey(t.Context(), imagesrc.Source{Kind: imagesrc.KindTar, Path: tar})
	// sha256 of "not really a tar"
	if err != nil || k != "sha256-"+sha256hex("not really a tar") || src.Kind != imagesrc.KindTar {
		t.Fatalf("ImageKey(tar) = %q, %v, %v", k, src, err)
	}
	k2, _, _ := ImageKey(t.Context(), imagesrc.Source{Kind: imagesrc.KindTar, Path: tar})
	if k2 != k {
		t.Errorf("ImageKey(tar) twice = %q, %q; want one key", k, k2)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// Two first runs of one image at once both get a VM over one base, made
// once; a later run reuses it; each VM has its own overlay over it.
func TestCreateSharesOneBase(t *testing.T) {
	testenv.NeedTools(t, "mkfs.ext4", "debugfs", QEMUImg, QEMUSystem)
	files := t.TempDir()
	kernel, initrd := filepath.Join(files, "vmlinuz"), filepath.Join(files, "initrd")
	root := filepath.Join(files, "root")
	for _, f := range []string{kernel, initrd, filepath.Join(root, "etc", "hello")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("hi\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := State(t.TempDir())
	o := Options{Image: "dir:" + root, Kernel: kernel, Initrd: initrd, State: state, Env: []string{"TOKEN=s3cret"}}
	var wg sync.WaitGroup
	dirs := make([]VMDir, 2)
	errs := make([]error, 2)
	for i := range dirs {
		wg.Add(1)
		go func() { defer wg.Done(); dirs[i], errs[i] = Create(t.Context(), o) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
	}
	images, _ := filepath.Glob(filepath.Join(state.Images(), "*"))
	if len(images) != 2 { // the key's directory and .lock
		t.Errorf("images/ holds %v; want one base and the lock", images)
	}
	infos := make([]Info, 3)
	for i, d := range dirs {
		var err error
		if infos[i], err = d.ReadInfo(); err != nil {
			t.Fatal(err)
		}
	}
	base := infos[0].Disks[1]
	ino := inode(t, base)
	dirs = append(dirs, "")
	var err error
	if dirs[2], err = Create(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if infos[2], err = dirs[2].ReadInfo(); err != nil {
		t.Fatal(err)
	}
	if inode(t, base) != ino {
		t.Errorf("a warm run made the base again")
	}
	for i, info := range infos {
		if info.ImageKey != infos[0].ImageKey || info.Disks[1] != base || info.Disks[0] != dirs[i].Disk() {
			t.Errorf("VM %d: key %s, disks %v; want key %s over %s", i, info.ImageKey, info.Disks, infos[0].ImageKey, base)
		}
		if strings.Contains(strings.Join(info.QEMU, " "), "s3cret") || !strings.Contains(strings.Join(info.Config.EnvNames, " "), "TOKEN") {
			t.Errorf("VM %d: vm.json config %+v, argv %q; want TOKEN's name, not its value", i, info.Config, info.QEMU)
		}
		out, err := exec.Command(QEMUImg, "info", "--output=json", dirs[i].Disk()).Output()
		if err != nil || !strings.Contains(string(out), `"backing-filename": "`+base+`"`) || !strings.Contains(string(out), `"format": "qcow2"`) {
			t.Errorf("VM %d overlay: %s, %v; want qcow2 over %s", i, out, err, base)
		}
		if fi, err := os.Stat(dirs[i].RunDoc()); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("VM %d run document: %v; want mode 0600", i, err)
		}
	}
	if fi, err := os.Stat(base); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("base %s: %v; want read-only", base, err)
	}
	// prune keeps a base while a VM uses it, and removes both once the
	// VMs have ended.
	if p, err := state.Prune(); err != nil || len(p.Images) != 0 || len(p.VMs) != 0 {
		t.Errorf("Prune with created VMs = %+v, %v; want nothing removed", p, err)
	}
	for _, d := range dirs {
		if err := writeJSON(d.Status(), Status{QEMU: "exit status 0"}, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := state.Prune()
	if err != nil || len(p.VMs) != 3 || len(p.Images) != 1 || p.Freed < 4096 {
		t.Errorf("Prune = %+v, %v; want 3 VMs and the base", p, err)
	}
	if left, _ := filepath.Glob(filepath.Join(string(state), "*", "*")); len(left) != 1 {
		t.Errorf("after prune: %v; want only the images lock", left)
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// The key of an image source is its manifest digest (a docker-archive's,
// which has none, its config's), found without converting; a registry
// reference is pinned to it.
func TestImageKeyImages(t *testing.T) {
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	config, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host + "/ginit/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "saved.tar")
	if err := tarball.WriteToFile(archive, ref, img); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src      imagesrc.Source
		key      string
		resolved string
	}{
		{imagesrc.Source{Kind: imagesrc.KindDocker, Path: host + "/ginit/app:1"}, manifest.String(), "docker://" + host + "/ginit/app@" + manifest.String()},
		{imagesrc.Source{Kind: imagesrc.KindOCI, Path: filepath.Join(dir, "layout")}, manifest.String(), "oci:" + filepath.Join(dir, "layout")},
		{imagesrc.Source{Kind: imagesrc.KindDockerArchive, Path: archive}, config.String(), "docker-archive:" + archive},
	} {
		key, src, err := ImageKey(t.Context(), tc.src)
		if err != nil || key != strings.Replace(tc.key, ":", "-", 1) || src.String() != tc.resolved {
			t.Errorf("ImageKey(%s) = %q, %s, %v; want %q, %s", tc.src, key, src, err, tc.key, tc.resolved)
		}
	}
	if _, _, err := ImageKey(t.Context(), imagesrc.Source{Kind: imagesrc.KindDocker, Path: host + "/ginit/none:1"}); err == nil {
		t.Errorf("ImageKey of a missing image: no error")
	}
}
