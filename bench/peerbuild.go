package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/mkuimage/cpio"
)

// peerEnv is what every peer's build shares: the kernel's release, a copy
// of its modules with depmod's indexes, and the directory to write into.
type peerEnv struct {
	work    string
	kver    string
	modules string // a copy of the kernel's /lib/modules/<kver>, depmod run
	boot    string // holds config-<kver>, from the kernel's package
	build   string // the build directory (cached peer binaries under build/bench)
}

// peerBuild is one initramfs a peer made for one disk setup, or why it
// could not.
type peerBuild struct {
	initrd string
	append string // the kernel command line beyond console= and quiet
	note   string // what the cell says beside the time, e.g. "no DHCP"
	skip   string // not run: why
}

// handover is the build of a peer that mounts root= and switches to the
// workload; dhcp is what its command line asks a lease with on the setup
// with a network card, empty for a peer that cannot.
func handover(initrd string, s diskSetup, dhcp string) peerBuild {
	b := peerBuild{initrd: initrd, append: "root=" + s.root + " rootfstype=ext4 init=/bench"}
	switch {
	case !s.net:
	case dhcp == "":
		b.note = "no DHCP"
	default:
		b.append += " " + dhcp
	}
	return b
}

// skipped is the build of a peer that could not be made.
func skipped(err error) peerBuild { return peerBuild{skip: err.Error()} }

// newPeerEnv copies the kernel's modules (hard links where the file system
// allows) and indexes them with depmod, and unpacks the kernel's config
// from its package for the tools that read /boot/config-<kver>.
func newPeerEnv(o options, work string) (*peerEnv, error) {
	if o.modules == "" {
		return nil, fmt.Errorf("no kernel modules under %s/kernel/lib/modules", o.build)
	}
	e := &peerEnv{work: work, kver: filepath.Base(o.modules), build: o.build}
	base := filepath.Join(work, "modroot")
	e.modules = filepath.Join(base, "lib/modules", e.kver)
	if err := os.MkdirAll(filepath.Dir(e.modules), 0o755); err != nil {
		return nil, fmt.Errorf("mkdir %s: %w", e.modules, err)
	}
	if err := exec.Command("cp", "-al", o.modules, e.modules).Run(); err != nil {
		os.RemoveAll(e.modules)
		if out, err := exec.Command("cp", "-a", o.modules, e.modules).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copy %s: %v: %s", o.modules, err, out)
		}
	}
	if out, err := exec.Command("depmod", "-b", base, e.kver).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("depmod -b %s %s: %v: %s", base, e.kver, err, out)
	}
	e.boot = filepath.Join(work, "boot")
	if err := os.MkdirAll(e.boot, 0o755); err != nil {
		return nil, fmt.Errorf("mkdir %s: %w", e.boot, err)
	}
	debs, _ := filepath.Glob(filepath.Join(o.build, "kernel/linux-image-*.deb"))
	if len(debs) == 1 {
		unpackConfig(debs[0], e.boot, e.kver)
	}
	return e, nil
}

// unpackConfig writes the package's boot/config-<kver> into dir; the tools
// only warn without it.
func unpackConfig(deb, dir, kver string) {
	tarball := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	untar := exec.Command("tar", "-x", "--strip-components=2", "-C", dir, "./boot/config-"+kver)
	untar.Stdin, _ = tarball.StdoutPipe()
	if tarball.Start() == nil {
		_ = untar.Run()
		_ = tarball.Wait()
	}
}

// withModules is the shell wrapper that runs a Debian initramfs tool in a
// mount namespace of its own where /usr/lib/modules/<kver> and /boot are
// the kernel's, as they would be on a machine running it: the tools find
// modules there only. The host's /usr/lib is overlaid on a tmpfs, so
// nothing outside the namespace changes.
const withModules = `set -eu
t=$1 mods=$2 kver=$3 boot=$4; shift 4
mount -t tmpfs none "$t"
mkdir "$t/u" "$t/w"
mount -t overlay overlay -o lowerdir=/usr/lib,upperdir="$t/u",workdir="$t/w" /usr/lib
mkdir -p "/usr/lib/modules/$kver"
mount --bind "$mods" "/usr/lib/modules/$kver"
mount --bind "$boot" /boot
exec "$@"`

// runTool runs argv as if the bench's kernel were the host's.
func (e *peerEnv) runTool(argv ...string) error {
	t, err := os.MkdirTemp(e.work, "ns-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(t)
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", withModules, "sh", t, e.modules, e.kver, e.boot}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+e.work)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", argv[0], err, lastLines(string(out), 4))
	}
	return nil
}

// tool finds a peer's command, or says which package has it.
func tool(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("no %s (Debian package %s; scripts/install-deps.sh installs it)", name, pkg)
	}
	return p, nil
}

// virtioModules are the drivers of the virtio setup that the Debian kernel
// builds as modules (NVMe and ext4 are built in).
var virtioModules = []string{"virtio_pci", "virtio_blk", "virtio_net"}

// tinyInitramfs builds tiny-initramfs: a static C /init that loads the
// listed modules, mounts root= and switches to it. It has no network code.
func tinyInitramfs(e *peerEnv, s diskSetup) peerBuild {
	mktirfs, err := tool("mktirfs", "tiny-initramfs-core")
	if err != nil {
		return skipped(err)
	}
	out := filepath.Join(e.work, "tiny-"+s.bus+".img")
	if err := e.runTool(mktirfs, "-o", out, "-m", "no", "-M", "no", "--include-modules="+strings.Join(virtioModules, ","), e.kver); err != nil {
		return skipped(err)
	}
	return handover(out, s, "")
}

// initramfsTools builds Debian's default initramfs with its own
// configuration directory: the listed modules only, zstd. Its init brings
// the network up only for an NFS root or when a boot script asks: the
// virtio setup adds a local-top script that does, so that ip=dhcp gets a
// lease before the root is mounted, as a network-unlocked root would.
func initramfsTools(e *peerEnv, s diskSetup) peerBuild {
	mkinitramfs, err := tool("mkinitramfs", "initramfs-tools-core")
	if err != nil {
		return skipped(err)
	}
	conf := filepath.Join(e.work, "initramfs-tools-"+s.bus)
	files := map[string]string{
		"initramfs.conf": "MODULES=list\nBUSYBOX=auto\nKEYMAP=n\nCOMPRESS=zstd\nDEVICE=\nNFSROOT=auto\nRUNSIZE=10%\nFSTYPE=ext4\n",
		"modules":        strings.Join(virtioModules, "\n") + "\n",
	}
	// mkinitramfs copies the configuration's scripts directory, which
	// must be there even when empty.
	files["scripts/.keep"] = ""
	if s.net {
		files["scripts/local-top/dhcp"] = "#!/bin/sh\ncase $1 in prereqs) exit 0;; esac\n. /scripts/functions\nconfigure_networking\n"
	}
	if err := writeFiles(conf, files); err != nil {
		return skipped(err)
	}
	out := filepath.Join(e.work, "initramfs-tools-"+s.bus+".img")
	if err := e.runTool(mkinitramfs, "-d", conf, "-o", out, e.kver); err != nil {
		return skipped(err)
	}
	return handover(out, s, "ip=dhcp")
}

// dracutInitramfs builds dracut without systemd: its shell init with
// udev, the block root, and on the virtio setup its legacy network module
// (dhclient), which rd.neednet=1 makes wait for the lease. The host's
// dracut configuration is left out (Debian's dracut-network adds ifcfg
// there, which pulls in systemd-networkd), and the drivers are only the
// listed ones, as for the other peers.
func dracutInitramfs(e *peerEnv, s diskSetup) peerBuild {
	dracut, err := tool("dracut", "dracut-core")
	if err != nil {
		return skipped(err)
	}
	mods := "base rootfs-block udev-rules"
	if s.net {
		mods += " network-legacy network"
	}
	confdir := filepath.Join(e.work, "dracut.conf.d")
	if err := os.MkdirAll(confdir, 0o755); err != nil {
		return skipped(fmt.Errorf("mkdir %s: %w", confdir, err))
	}
	out := filepath.Join(e.work, "dracut-"+s.bus+".img")
	argv := []string{dracut, "--quiet", "--force", "--conf", "/dev/null", "--confdir", confdir,
		"--no-hostonly", "--no-early-microcode", "--kver", e.kver,
		"-m", mods, "--drivers", strings.Join(virtioModules, " "), "--zstd", out}
	if err := e.runTool(argv...); err != nil {
		return skipped(err)
	}
	return handover(out, s, "ip=dhcp rd.neednet=1")
}

// booster builds booster (Go) from its source: the generator and its
// init. Its network serves only the unlocking of an encrypted root and is
// taken down before the switch, so neither setup asks it for a lease.
func booster(e *peerEnv, s diskSetup) peerBuild {
	gen, init, err := boosterBinaries(e)
	if err != nil {
		return skipped(err)
	}
	conf := filepath.Join(e.work, "booster.yaml")
	yaml := "universal: false\nmodules: " + strings.Join(virtioModules, ",") + "\ncompression: zstd\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		return skipped(fmt.Errorf("write %s: %w", conf, err))
	}
	out := filepath.Join(e.work, "booster-"+s.bus+".img")
	cmd := exec.Command(gen, "build", "--force", "--init-binary", init, "--kernel-version", e.kver,
		"--modules-dir", e.modules, "--config", conf, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return skipped(fmt.Errorf("booster build: %v: %s", err, lastLines(string(b), 3)))
	}
	return handover(out, s, "")
}

// boosterBinaries builds booster's generator and init once into the
// cache.
func boosterBinaries(e *peerEnv) (string, string, error) {
	src, err := peerSource(e, "booster", "github.com/anatol/booster")
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(e.build, "bench/peers")
	gen, init := filepath.Join(dir, "booster-generator"), filepath.Join(dir, "booster-init")
	for bin, pkg := range map[string]string{gen: "./generator", init: "./init"} {
		if _, err := os.Stat(bin); err == nil {
			continue
		}
		if err := goBuildIn(src, bin, pkg); err != nil {
			return "", "", err
		}
	}
	return gen, init, nil
}

// originalGinit is the original ginit (github.com/thebsdbox/ginit): a Go
// /init beside Debian's static busybox, gzip as it shipped. It loads no
// modules, so it only boots where the disk's driver is built in (NVMe
// here), waits two seconds before it mounts the root, and chroots into it
// to run entrypoint=.
func originalGinit(e *peerEnv, s diskSetup) peerBuild {
	if s.bus != "nvme" {
		return peerBuild{skip: "loads no kernel modules, and virtio_blk is one in this kernel"}
	}
	src, err := peerSource(e, "thebsdbox-ginit", "github.com/thebsdbox/ginit")
	if err != nil {
		return skipped(err)
	}
	init := filepath.Join(e.build, "bench/peers/thebsdbox-ginit")
	if _, err := os.Stat(init); err != nil {
		if err := goBuildIn(src, init, "."); err != nil {
			return skipped(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return skipped(fmt.Errorf("no static busybox (busybox-static): %w", err))
	}
	bin, err := os.ReadFile(init)
	if err != nil {
		return skipped(err)
	}
	recs := []cpio.Record{
		cpio.Directory("bin", 0o755), cpio.Directory("usr", 0o755), cpio.Directory("usr/bin", 0o755),
		cpio.Directory("usr/sbin", 0o755), cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("bin/busybox", string(bb), 0o755),
		cpio.Symlink("bin/sh", "busybox"), cpio.Symlink("usr/sbin/chroot", "../../bin/busybox"),
		cpio.Symlink("usr/bin/setsid", "../../bin/busybox"), cpio.Symlink("bin/cttyhack", "busybox"),
		cpio.StaticFile("init", string(bin), 0o755),
	}
	out := filepath.Join(e.work, "thebsdbox-ginit.cpio")
	if err := writeCpio(out, recs); err != nil {
		return skipped(err)
	}
	if err := exec.Command("gzip", "-9", out).Run(); err != nil {
		return skipped(fmt.Errorf("gzip %s: %w", out, err))
	}
	return peerBuild{initrd: out + ".gz", append: "root=" + s.root + " entrypoint=/bench"}
}

// peerSource finds a peer's Go source: a checkout under
// build/bench/src/NAME, else the module from the Go module proxy.
func peerSource(e *peerEnv, name, module string) (string, error) {
	dir := filepath.Join(e.build, "bench/src", name)
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return dir, nil
	}
	out, err := exec.Command("go", "mod", "download", "-json", module+"@latest").Output()
	if err != nil {
		return "", fmt.Errorf("no source: no checkout in %s, and the Go module proxy has no %s", dir, module)
	}
	const key = `"Dir": "`
	i := strings.Index(string(out), key)
	if i < 0 {
		return "", fmt.Errorf("go mod download %s: no Dir in %s", module, out)
	}
	rest := string(out)[i+len(key):]
	return rest[:strings.IndexByte(rest, '"')], nil
}

// goBuildIn builds pkg of the module in dir, static, its dependencies
// from the module proxy.
func goBuildIn(dir, out, pkg string) error {
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %v: %s", pkg, dir, err, lastLines(string(b), 3))
	}
	return nil
}

// writeFiles writes files (path under dir to content), executable where
// they are scripts.
func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", filepath.Dir(p), err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// writeCpio writes records as a newc archive at path.
func writeCpio(path string, recs []cpio.Record) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := cpio.Newc.Writer(f)
	if err := cpio.WriteRecords(w, recs); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
