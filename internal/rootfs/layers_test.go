package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// tree lists the staged root as "path" for directories ("path/") and files.
func tree(t *testing.T, root string) string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, " ")
}

func applyLayers(t *testing.T, root string, opt Options, layers ...*bytes.Buffer) (*Result, error) {
	t.Helper()
	x := NewExtractor(root, opt)
	for i, l := range layers {
		if err := x.Apply(context.Background(), l, true); err != nil {
			return nil, &layerErr{i, err}
		}
	}
	return x.Finish()
}

type layerErr struct {
	i   int
	err error
}

func (e *layerErr) Error() string { return "layer " + string(rune('1'+e.i)) + ": " + e.err.Error() }
func (e *layerErr) Unwrap() error { return e.err }

func TestLayersWhiteouts(t *testing.T) {
	root, outside := sandbox(t)
	l1 := mkTar(t,
		ent{typ: tar.TypeDir, name: "etc/", mode: 0o755},
		ent{typ: tar.TypeReg, name: "etc/keep", body: "keep"},
		ent{typ: tar.TypeReg, name: "etc/gone", body: "gone"},
		ent{typ: tar.TypeDir, name: "var/cache/apt/", mode: 0o755},
		ent{typ: tar.TypeReg, name: "var/cache/apt/pkgcache.bin", body: "cache"},
		ent{typ: tar.TypeDir, name: "opq/", mode: 0o755},
		ent{typ: tar.TypeReg, name: "opq/lower", body: "lower"},
		ent{typ: tar.TypeDir, name: "opq/sub/", mode: 0o755},
		ent{typ: tar.TypeReg, name: "opq/sub/lower", body: "lower"},
		ent{typ: tar.TypeReg, name: "bin/app", body: "v1"},
		ent{typ: tar.TypeLink, name: "bin/app-link", link: "bin/app"},
	)
	l2 := mkTar(t,
		ent{typ: tar.TypeReg, name: "etc/.wh.gone"},
		ent{typ: tar.TypeReg, name: "var/.wh.cache"},
		ent{typ: tar.TypeReg, name: "opq/before", body: "same layer, before the marker"},
		ent{typ: tar.TypeReg, name: "opq/.wh..wh..opq"},
		ent{typ: tar.TypeReg, name: "opq/sub/upper", body: "upper"},
		ent{typ: tar.TypeReg, name: "new/.wh.never", body: ""},           // whiteout in a directory lower layers lack
		ent{typ: tar.TypeReg, name: "etc/.wh..wh.plnk"},                  // AUFS metadata: ignored
		ent{typ: tar.TypeLink, name: "bin/app-across", link: "etc/keep"}, // hard link to a lower layer's file
		ent{typ: tar.TypeReg, name: "bin/app", body: "v2"},               // replaced: breaks the lower link
		ent{typ: tar.TypeReg, name: "etc/fresh", body: "fresh"},
		ent{typ: tar.TypeReg, name: "etc/.wh.fresh"}, // same layer: hides nothing
	)
	if _, err := applyLayers(t, root, Options{}, l1, l2); err != nil {
		t.Fatalf("applying layers: %v", err)
	}
	want := "bin/ bin/app bin/app-across bin/app-link etc/ etc/fresh etc/keep new/ opq/ opq/before opq/sub/ opq/sub/upper var/"
	if got := tree(t, root); got != want {
		t.Errorf("flattened tree:\n got %s\nwant %s", got, want)
	}
	for p, body := range map[string]string{"bin/app": "v2", "bin/app-link": "v1", "bin/app-across": "keep", "opq/before": "same layer, before the marker"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != body {
			t.Errorf("%s = %q, %v; want %q", p, b, err, body)
		}
	}
	a, _ := os.Stat(filepath.Join(root, "bin/app-across"))
	k, _ := os.Stat(filepath.Join(root, "etc/keep"))
	if !os.SameFile(a, k) || a.Sys().(*syscall.Stat_t).Nlink != 2 {
		t.Errorf("bin/app-across is not a hard link of etc/keep across the layers")
	}
	checkOutside(t, root, outside)
}

func TestLayersFlatTarKeepsWhiteoutNames(t *testing.T) {
	root, _ := sandbox(t)
	if _, err := ExtractWith(context.Background(), mkTar(t, ent{typ: tar.TypeReg, name: "a/.wh.b", body: "x"}), root, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, root); got != "a/ a/.wh.b" {
		t.Errorf("flat tar tree = %q; want the .wh. file kept as a file", got)
	}
}

func TestLayersRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]ent
		want   error
		text   string
	}{
		{"whiteout of nothing", [][]ent{{{typ: tar.TypeReg, name: "a/.wh."}}}, ErrWhiteout, `"a/.wh."`},
		{"whiteout dotdot", [][]ent{{{typ: tar.TypeReg, name: "../.wh.outside"}}}, ErrDotDot, ""},
		{"absolute name", [][]ent{{{typ: tar.TypeReg, name: "/etc/passwd", body: "x"}}}, ErrAbsolute, `"/etc/passwd"`},
		{"absolute whiteout", [][]ent{{{typ: tar.TypeReg, name: "/.wh.etc"}}}, ErrAbsolute, `"/.wh.etc"`},
		{"whiteout through an escaping symlink", [][]ent{
			{{typ: tar.TypeSymlink, name: "evil", link: "../outside"}},
			{{typ: tar.TypeReg, name: "evil/.wh.secret"}},
		}, ErrSymlinkEscape, "evil/.wh.secret"},
		{"opaque through an escaping symlink", [][]ent{
			{{typ: tar.TypeSymlink, name: "evil", link: "../../outside"}},
			{{typ: tar.TypeReg, name: "evil/.wh..wh..opq"}},
		}, ErrSymlinkEscape, ""},
		{"hard link to a whited-out file", [][]ent{
			{{typ: tar.TypeReg, name: "f", body: "x"}},
			{{typ: tar.TypeReg, name: ".wh.f"}},
			{{typ: tar.TypeLink, name: "g", link: "f"}},
		}, os.ErrNotExist, `"g"`},
		{"too large", [][]ent{
			{{typ: tar.TypeReg, name: "a", body: strings.Repeat("a", 600)}, {typ: tar.TypeReg, name: "b", body: strings.Repeat("b", 600)}},
		}, ErrTooLarge, `"b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := sandbox(t)
			var ls []*bytes.Buffer
			for _, l := range tc.layers {
				ls = append(ls, mkTar(t, l...))
			}
			_, err := applyLayers(t, root, Options{MaxBytes: 1000}, ls...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("applying layers = %v; want %v naming %s", err, tc.want, tc.text)
			}
			checkOutside(t, root, outside)
		})
	}
}

func TestLayersTruncated(t *testing.T) {
	root, _ := sandbox(t)
	b := mkTar(t, ent{typ: tar.TypeReg, name: "big", body: strings.Repeat("x", 5000)})
	short := bytes.NewBuffer(b.Bytes()[:2048])
	_, err := applyLayers(t, root, Options{}, short)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated layer = %v; want an error saying truncated", err)
	}
}
