package ext4w

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ext4fs/e2fstest"
)

// fuzzNames are the names layers are made of: nested, odd, hostile.
var fuzzNames = []string{"a", "a/b", "b", "c/d/e", "x\"y", "n\nl", "a/.wh.b", ".wh.a", "c/.wh..wh..opq",
	"../up", "/abs", "a/../b", "lost+found", ".ginit/image.json", "\xff\xfe", "s", "s/in", strings.Repeat("l", 255)}

// fuzzLayers turns bytes into tar layers: each 4 bytes are an entry (kind,
// name, target, size); kind 0 starts a new layer.
func fuzzLayers(data []byte) [][]byte {
	var layers [][]byte
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	end := func() {
		tw.Close()
		layers = append(layers, append([]byte(nil), b.Bytes()...))
		b.Reset()
		tw = tar.NewWriter(&b)
	}
	for len(data) >= 4 && len(layers) < 4 {
		kind, name, target, size := data[0]%10, fuzzNames[int(data[1])%len(fuzzNames)], fuzzNames[int(data[2])%len(fuzzNames)], int(data[3])
		data = data[4:]
		h := &tar.Header{Name: name, Mode: int64(size) * 0o7, Uid: size * 1000, Gid: size, ModTime: time.Unix(int64(size)<<26, 0), Format: tar.FormatPAX}
		body := ""
		switch kind {
		case 0:
			end()
			continue
		case 1:
			h.Typeflag, body = tar.TypeReg, strings.Repeat("z", size*size*7)
		case 2:
			h.Typeflag = tar.TypeDir
		case 3:
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
		case 4:
			h.Typeflag, h.Linkname = tar.TypeLink, target
		case 5:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(size), int64(size)*300
		case 6:
			h.Typeflag = tar.TypeFifo
		case 7:
			h.Typeflag = tar.TypeReg
			h.PAXRecords = map[string]string{"SCHILY.xattr.user." + target: strings.Repeat("v", size*4)}
		case 8:
			h.Typeflag, body = tar.TypeReg, string(make([]byte, size*100))+"end"
		case 9:
			h.Typeflag, h.Name = tar.TypeReg, target+"/"+".wh."+name
		}
		h.Size = int64(len(body))
		if tw.WriteHeader(h) == nil {
			tw.Write([]byte(body))
		}
	}
	end()
	return layers
}

// Any layers either fail with an error or make an image that e2fsck
// finds clean.
func FuzzLayers(f *testing.F) {
	for _, seed := range [][]byte{
		{1, 0, 0, 3, 2, 1, 0, 0, 4, 2, 0, 0},
		{3, 15, 0, 0, 1, 16, 0, 5, 0, 0, 0, 0, 9, 0, 1, 0},
		{1, 1, 0, 9, 4, 2, 1, 0, 0, 0, 0, 0, 9, 1, 0, 0, 4, 3, 2, 0},
		{7, 0, 5, 200, 5, 4, 0, 7, 6, 14, 0, 1, 2, 12, 0, 0, 8, 13, 0, 50},
		{2, 2, 0, 0, 0, 0, 0, 0, 1, 8, 0, 4, 9, 2, 0, 0},
	} {
		f.Add(seed, false)
	}
	f.Add([]byte("not a tar at all"), true)
	e2fsck := e2fstest.Tool(f, "e2fsck")
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		layers := [][]byte{data}
		if !raw {
			layers = fuzzLayers(data)
		}
		dir := t.TempDir()
		img := filepath.Join(dir, "fs.img")
		out, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		im := NewImageFile(out, true)
		defer im.Close()
		tr := NewTree(im, Options{MaxBytes: 1 << 20})
		for _, l := range layers {
			if err := tr.Apply(context.Background(), bytes.NewReader(l), len(layers) > 1); err != nil {
				return
			}
		}
		pl, err := tr.Plan(Params{Free: 1 << 20, Time: 1700000000, Label: "fuzz"})
		if err != nil {
			return
		}
		if err := pl.Write(IDs{UUID: [16]byte{9}}); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if b, err := exec.Command(e2fsck, "-fn", img).CombinedOutput(); err != nil {
			t.Fatalf("e2fsck -fn: %v\n%s", err, b)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("%s holds %d entries; want the image only", dir, len(entries))
		}
	})
}
