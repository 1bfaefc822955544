package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Whatever a layer holds, extraction ends with an error or a tree, never
// a panic, and never touches anything outside the root.
func FuzzApplyLayer(f *testing.F) {
	seed := func(ents ...ent) {
		var tb testing.T
		f.Add(mkTar(&tb, ents...).Bytes())
	}
	seed(ent{typ: tar.TypeSymlink, name: "evil", link: "../outside"}, ent{typ: tar.TypeReg, name: "evil/x", body: "x"})
	seed(ent{typ: tar.TypeDir, name: "d/", mode: 0o755}, ent{typ: tar.TypeReg, name: "d/.wh..wh..opq"}, ent{typ: tar.TypeReg, name: "d/.wh.x"})
	seed(ent{typ: tar.TypeLink, name: "h", link: "../outside/secret"})
	seed(ent{typ: tar.TypeSymlink, name: "a", link: "/"}, ent{typ: tar.TypeReg, name: "a/b", body: "b"}, ent{typ: tar.TypeLink, name: "c", link: "a/b"})
	f.Fuzz(func(t *testing.T, data []byte) {
		base, err := os.MkdirTemp("", "fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(base)
		root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
		os.Mkdir(root, 0o755)
		os.Mkdir(outside, 0o755)
		os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
		x := NewExtractor(root, Options{MaxBytes: 1 << 20})
		if err := x.Apply(context.Background(), bytes.NewReader(data), true); err == nil {
			x.Finish()
		}
		checkOutside(t, root, outside)
	})
}
