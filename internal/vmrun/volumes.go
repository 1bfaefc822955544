package vmrun

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/imagebuild"
	"github.com/ginit-dev/ginit/internal/mkext4"
	"github.com/ginit-dev/ginit/internal/qemu"
)

// Virtiofsd is QEMU's virtiofs daemon (Debian's qemu-system-common).
var Virtiofsd = "/usr/lib/qemu/virtiofsd"

// VolumeSize is a new named volume's size; the disk file is sparse.
const VolumeSize = 1 << 30

// VolumeDir is one named volume's directory: $STATE/volumes/NAME.
type VolumeDir string

// Volume is the directory of the named volume name.
func (s State) Volume(name string) VolumeDir { return VolumeDir(filepath.Join(s.Volumes(), name)) }

// Disk is the volume's ext4 disk.
func (d VolumeDir) Disk() string { return filepath.Join(string(d), "disk.img") }

// Initrds holds initramfs images with extra modules after them, by content.
func (s State) Initrds() string { return filepath.Join(string(s), "initrds") }

// Share is a host directory a VM's virtiofsd shares on Socket; its
// supervisor starts one per share before QEMU and ends it after.
type Share struct {
	Socket string `json:"socket"`
	Dir    string `json:"dir"`
	Log    string `json:"log"`
}

// attach gives m what g needs beyond the run document: a vhost-user-fs
// device per shared directory (and the shared memory it needs) with the
// share its virtiofsd serves, a disk per named volume (made on first
// use), systemd's credentials in fw_cfg, and the modules for them after
// the initramfs. Each virtiofsd ends by itself when its QEMU does (the
// vhost-user connection closes); its supervisor also ends them for a QEMU
// that never connected, or ended early.
func (g GuestOptions) attach(o Options, dir VMDir, m *qemu.VM) (shares []Share, err error) {
	vols, err := parseVolumes(g.Volumes)
	if err != nil {
		return nil, err
	}
	creds, err := g.credentials()
	if err != nil {
		return nil, err
	}
	var modules []string
	for i, v := range vols {
		id := "vol" + strconv.Itoa(i)
		if v.hostDir == "" {
			disk, err := o.State.ensureVolume(v.name)
			if err != nil {
				return nil, err
			}
			m.Extra = append(m.Extra, "-drive", "file="+qemuEscape(disk)+",if=none,id="+id+",format=raw",
				"-device", m.Machine.Virtio("virtio-blk")+",drive="+id+",serial="+v.doc.Source)
			continue
		}
		if len(modules) == 0 {
			modules = append(modules, "virtiofs")
			// vhost-user devices read the guest's memory, which must be
			// shared with virtiofsd.
			m.Extra = append(m.Extra, "-object", fmt.Sprintf("memory-backend-memfd,id=mem,size=%dM,share=on", memMB(m)), "-numa", "node,memdev=mem")
		}
		sock := filepath.Join(string(dir), id+".sock")
		if len(sock) >= 108 {
			return nil, fmt.Errorf("-v %s: virtiofsd socket %s: longer than a socket path may be (108 bytes); use a shorter --state", v.hostDir, sock)
		}
		shares = append(shares, Share{Socket: sock, Dir: v.hostDir, Log: filepath.Join(string(dir), id+".log")})
		m.Extra = append(m.Extra, "-chardev", "socket,id="+id+",path="+qemuEscape(sock),
			"-device", m.Machine.Virtio("vhost-user-fs")+",chardev="+id+",tag="+v.doc.Source)
	}
	if len(creds) > 0 {
		// systemd reads them itself, from the qemu_fw_cfg driver's files.
		modules = append(modules, "qemu_fw_cfg")
		cdir := filepath.Join(string(dir), "credentials")
		if err := os.Mkdir(cdir, 0o700); err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		if m.FwCfg == nil {
			m.FwCfg = map[string]string{}
		}
		for _, c := range creds {
			p := filepath.Join(cdir, c[0])
			if err := os.WriteFile(p, []byte(c[1]), 0o600); err != nil {
				return nil, fmt.Errorf("credential %s: %w", c[0], err)
			}
			m.FwCfg[credentialFwCfg+c[0]] = p
		}
	}
	if len(modules) > 0 {
		if m.Initrd, err = withModules(o.State, o.Kernel, m.Initrd, modules); err != nil {
			return nil, err
		}
	}
	return shares, nil
}

func memMB(m *qemu.VM) int {
	if m.MemMB == 0 {
		return 256 // qemu.VM's default
	}
	return m.MemMB
}

// qemuEscape doubles commas, as QEMU's option syntax wants inside a value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// startVirtiofsds starts a virtiofsd for each share; stop ends them.
func startVirtiofsds(shares []Share) (stop func(), err error) {
	var daemons []func()
	stop = func() {
		for _, stop := range daemons {
			stop()
		}
	}
	for _, sh := range shares {
		d, err := startVirtiofsd(sh.Socket, sh.Dir, sh.Log)
		if err != nil {
			stop()
			return nil, fmt.Errorf("-v %s: %w", sh.Dir, err)
		}
		daemons = append(daemons, d)
	}
	return stop, nil
}

// startVirtiofsd shares dir on the vhost-user socket sock and waits for
// the socket. Its messages go to logPath. stop ends it.
func startVirtiofsd(sock, dir, logPath string) (stop func(), err error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("virtiofsd log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(Virtiofsd, "--socket-path="+sock, "-o", "source="+dir, "-o", "cache=auto")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("virtiofsd (QEMU's, from qemu-system-common): %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err := os.Stat(sock); err == nil {
			return func() { _ = cmd.Process.Kill(); <-exited }, nil
		}
		select {
		case err := <-exited:
			msg, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("virtiofsd exited (%w): %s", err, bytes.TrimSpace(msg))
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	return nil, errors.New("virtiofsd made no socket within 10s")
}

// ensureVolume returns the named volume's disk, made empty (ext4, sparse)
// on first use, or ErrVolumeInUse while another VM has it. It needs no
// root.
func (s State) ensureVolume(name string) (string, error) {
	vd := s.Volume(name)
	disk := vd.Disk()
	if _, err := os.Stat(disk); err == nil {
		// One VM at a time: two would corrupt the file system.
		return disk, checkNotInUse(name, disk)
	}
	if err := os.MkdirAll(string(vd), 0o700); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	tmp := disk + ".tmp"
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if err := mkext4.Format(tmp, mkext4.Options{Size: VolumeSize, Label: "ginit-volume"}); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if err := os.Rename(tmp, disk); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	return disk, nil
}

// withModules returns initrd with an archive of the kernel modules names
// (and what they need) after it, from the modules beside the kernel
// (KERNELDIR/lib/modules/RELEASE, as make kernel lays them out). Linux
// unpacks concatenated archives, and ginit loads what the second one lists.
// The result is kept under $STATE/initrds by the hash of both parts.
func withModules(s State, kernel, initrd string, names []string) (string, error) {
	dirs, _ := filepath.Glob(filepath.Join(filepath.Dir(kernel), "lib", "modules", "*"))
	if len(dirs) != 1 {
		return "", fmt.Errorf("kernel modules for %s: want one directory %s, found %d", names, filepath.Join(filepath.Dir(kernel), "lib/modules/RELEASE"), len(dirs))
	}
	im := imagebuild.NewImage()
	if _, err := imagebuild.AddExtraModules(im, dirs[0], names); err != nil {
		return "", err
	}
	var extra bytes.Buffer
	if err := imagebuild.WriteArchive(&extra, im.Records()); err != nil {
		return "", err
	}
	base, err := os.ReadFile(initrd)
	if err != nil {
		return "", fmt.Errorf("initramfs: %w", err)
	}
	// Each archive starts on a 4-byte boundary, as newc's headers do.
	pad := make([]byte, (4-len(base)%4)%4)
	h := sha256.New()
	h.Write(base)
	h.Write(pad)
	h.Write(extra.Bytes())
	out := filepath.Join(s.Initrds(), hex.EncodeToString(h.Sum(nil))[:32]+".cpio")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(s.Initrds(), 0o700); err != nil {
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	f, err := os.CreateTemp(s.Initrds(), "new-")
	if err != nil {
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	_, err = io.Copy(f, io.MultiReader(bytes.NewReader(base), bytes.NewReader(pad), &extra))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), out)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	return out, nil
}

// VolumeInfo is one named volume as volume ls shows it.
type VolumeInfo struct {
	Name string
	Size int64 // bytes the disk file takes on the host
}

// ListVolumes lists the named volumes, by name.
func (s State) ListVolumes() ([]VolumeInfo, error) {
	entries, err := os.ReadDir(s.Volumes())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	var out []VolumeInfo
	for _, e := range entries {
		var st unix.Stat_t
		if err := unix.Stat(s.Volume(e.Name()).Disk(), &st); err != nil {
			continue // not made yet, or being made
		}
		out = append(out, VolumeInfo{Name: e.Name(), Size: st.Blocks * 512})
	}
	return out, nil
}

// ErrVolumeInUse is returned for a volume a running QEMU has open.
var ErrVolumeInUse = errors.New("in use by a running VM")

// RemoveVolume removes the named volume and its data. A volume that a
// QEMU holds (QEMU locks the bytes of an image it has open) stays.
func (s State) RemoveVolume(name string) error {
	if err := CheckVolumeName(name); err != nil {
		return err
	}
	if err := checkNotInUse(name, s.Volume(name).Disk()); err != nil {
		return err
	}
	if err := os.RemoveAll(string(s.Volume(name))); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}

// checkNotInUse fails with ErrVolumeInUse when a QEMU has the volume's
// disk open: QEMU takes OFD locks on the bytes from 100 on of every image
// it opens, so any lock there is its.
func checkNotInUse(name, disk string) error {
	f, err := os.Open(disk)
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 100, Len: 200}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err == nil && lk.Type != unix.F_UNLCK {
		return fmt.Errorf("volume %s: %w", name, ErrVolumeInUse)
	}
	return nil
}
