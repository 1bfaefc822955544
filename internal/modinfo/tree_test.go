package modinfo

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ginit-dev/ginit/internal/modinfo/modtest"
)

const rel = "6.1.0-test"

func mod(fields ...string) *fstest.MapFile {
	return &fstest.MapFile{Data: modtest.Module(append(fields, "vermagic="+rel+" SMP mod_unload")...), Mode: 0o644}
}

// testTree is a small kernel: virtio_blk needs virtio and virtio_ring,
// virtio needs virtio_ring; sd_mod needs scsi_mod (which needs scsi_common)
// and crc_t10dif, built in; virtio-rng is spelt with a dash; ext4 and nvme
// are built in; crc32c is a built-in alias; hid-generic answers an alias.
func testTree(t *testing.T) *Tree {
	t.Helper()
	fsys := fstest.MapFS{
		"kernel/drivers/block/virtio_blk.ko":          mod("name=virtio_blk", "depends=virtio,virtio_ring", "alias=virtio:d00000002v*"),
		"kernel/drivers/virtio/virtio.ko":             mod("name=virtio", "depends=virtio_ring"),
		"kernel/drivers/virtio/virtio_ring.ko":        mod("name=virtio_ring", "depends="),
		"kernel/drivers/char/hw_random/virtio-rng.ko": mod("name=virtio_rng", "depends=virtio,virtio_ring", "alias=virtio:d00000004v*"),
		"kernel/drivers/scsi/sd_mod.ko":               mod("name=sd_mod", "depends=scsi_mod,crc_t10dif", "softdep=pre: crc32c post: nothere"),
		"kernel/drivers/scsi/scsi_mod.ko":             mod("name=scsi_mod", "depends=scsi_common"),
		"kernel/drivers/scsi/scsi_common.ko":          mod("name=scsi_common", "depends="),
		"kernel/drivers/hid/hid-generic.ko":           mod("name=hid_generic", "alias=hid:b*g0001v*p*"),
		"kernel/drivers/broken.ko":                    mod("name=broken", "depends=gone"),
		"kernel/a.ko":                                 mod("name=a", "depends=b"),
		"kernel/b.ko":                                 mod("name=b", "depends=a"),
		"kernel/soft1.ko":                             mod("name=soft1", "softdep=post: soft2"),
		"kernel/soft2.ko":                             mod("name=soft2", "softdep=pre: soft1"),
		"modules.builtin":                             {Data: []byte("kernel/fs/ext4/ext4.ko\nkernel/drivers/nvme/host/nvme.ko\nkernel/lib/crc-t10dif.ko\nkernel/crypto/crc32c_generic.ko\n")},
		"modules.builtin.modinfo":                     {Data: modtest.Modinfo("crc32c_generic.alias=crc32c", "nvme.alias=pci:v*d*sv*sd*bc01sc08i02*")},
		"modules.order":                               {Data: []byte("not a module\n")},
	}
	tree, err := OpenTree(fsys)
	if err != nil {
		t.Fatalf("OpenTree() = %v", err)
	}
	return tree
}

func names(mods []Module) []string {
	var out []string
	for _, m := range mods {
		out = append(out, m.Name)
	}
	return out
}

func TestResolve(t *testing.T) {
	tree := testTree(t)
	if n := tree.Len(); n != 13 {
		t.Errorf("Len() = %d; want 13", n)
	}
	res, err := tree.Resolve([]string{"virtio_blk", "virtio-rng", "sd_mod", "ext4", "e1000", "hid:b0003g0001v0000046Dp0000C52B", "virtio_blk", "crc32c"})
	if err != nil {
		t.Fatalf("Resolve() = %v", err)
	}
	got := strings.Join(names(res.Modules), " ")
	want := "virtio_ring virtio virtio_blk virtio_rng scsi_common scsi_mod sd_mod hid_generic"
	if got != want {
		t.Errorf("Resolve().Modules = %s; want %s", got, want)
	}
	for _, tt := range []struct {
		what      string
		got, want []string
	}{
		{"Load", res.Load, []string{"virtio_blk", "virtio_rng", "sd_mod", "hid_generic"}},
		{"Builtin", res.Builtin, []string{"ext4", "crc32c"}},
		{"Missing", res.Missing, []string{"e1000"}},
		{"SoftMissing", res.SoftMissing, []string{"nothere"}},
	} {
		if strings.Join(tt.got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Resolve().%s = %q; want %q", tt.what, tt.got, tt.want)
		}
	}
	if p, ok := tree.Path("virtio-rng"); !ok || p != "kernel/drivers/char/hw_random/virtio-rng.ko" {
		t.Errorf("Path(virtio-rng) = %q, %v", p, ok)
	}
	if !tree.IsBuiltin("crc-t10dif") {
		t.Errorf("IsBuiltin(crc-t10dif) = false; want true")
	}
}

func TestResolveErrors(t *testing.T) {
	tree := testTree(t)
	for _, tt := range []struct {
		name, want string
	}{
		{"broken", "depends on gone"},
		{"a", "cycle"},
	} {
		_, err := tree.Resolve([]string{tt.name})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Resolve(%s) = %v; want an error with %q", tt.name, err, tt.want)
		}
	}
	// Soft dependencies that go round are not an error.
	res, err := tree.Resolve([]string{"soft1"})
	if err != nil {
		t.Fatalf("Resolve(soft1) = %v", err)
	}
	if got := strings.Join(names(res.Modules), " "); got != "soft2 soft1" {
		t.Errorf("Resolve(soft1).Modules = %s; want soft2 soft1", got)
	}
}

func TestDepFile(t *testing.T) {
	tree := testTree(t)
	res, err := tree.Resolve([]string{"virtio_blk", "virtio_rng", "sd_mod"})
	if err != nil {
		t.Fatal(err)
	}
	want := `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
`
	if got := string(DepFile(res.Modules)); got != want {
		t.Errorf("DepFile() =\n%s\nwant\n%s", got, want)
	}
}

func TestAliasAndSoftdepFiles(t *testing.T) {
	tree := testTree(t)
	res, err := tree.Resolve([]string{"virtio_blk", "virtio_rng", "sd_mod"})
	if err != nil {
		t.Fatal(err)
	}
	wantAlias := `# Aliases extracted from modules themselves.
alias virtio:d00000002v* virtio_blk
alias virtio:d00000004v* virtio_rng
`
	if got := string(AliasFile(res.Modules)); got != wantAlias {
		t.Errorf("AliasFile() =\n%s\nwant\n%s", got, wantAlias)
	}
	wantSoft := `# Soft dependencies extracted from modules themselves.
softdep sd_mod pre: crc32c post: nothere
`
	if got := string(SoftdepFile(res.Modules)); got != wantSoft {
		t.Errorf("SoftdepFile() =\n%s\nwant\n%s", got, wantSoft)
	}
}

func TestCompressedModuleNeedsDecompressor(t *testing.T) {
	fsys := fstest.MapFS{"kernel/x.ko.xz": {Data: []byte("not really xz")}}
	tree, err := OpenTree(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Info("x"); err == nil || !strings.Contains(err.Error(), "decompressor") {
		t.Errorf("Info(x) = %v; want a no-decompressor error", err)
	}
	tree.Decompress = func(name string, data []byte) ([]byte, error) {
		return modtest.Module("name=x", "depends="), nil
	}
	info, err := tree.Info("x")
	if err != nil || info.Name != "x" {
		t.Errorf("Info(x) = %+v, %v; want name x", info, err)
	}
}
