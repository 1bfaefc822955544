package export

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"gopkg.in/yaml.v3"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var stamp = time.Unix(1700000000, 0).UTC()

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkContainerDisk checks img against KubeVirt's containerDisk contract:
// linux/amd64, and exactly one regular file, under /disk/, owned 107:107,
// mode 0440, holding want.
func checkContainerDisk(t *testing.T, img v1.Image, want string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform = %s/%s; want linux/amd64", cf.OS, cf.Architecture)
	}
	hdrs, err := Files(img)
	if err != nil {
		t.Fatal(err)
	}
	var regular []*tar.Header
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			regular = append(regular, h)
		}
	}
	if len(regular) != 1 {
		t.Fatalf("%d regular files; want exactly one disk", len(regular))
	}
	h := regular[0]
	if h.Name != "disk/disk.img" || h.Uid != 107 || h.Gid != 107 || h.Mode&0o7777 != 0o440 {
		t.Errorf("disk = %s %d:%d %#o; want disk/disk.img 107:107 0440", h.Name, h.Uid, h.Gid, h.Mode&0o7777)
	}
	var got bytes.Buffer
	if err := ExtractFile(img, "/disk/disk.img", &got); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("disk content = %q; want %q", got.String(), want)
	}
}

func checkKernelBoot(t *testing.T, img v1.Image, kernel, initrd string) {
	t.Helper()
	for path, want := range map[string]string{KernelPath: kernel, InitrdPath: initrd} {
		var got bytes.Buffer
		if err := ExtractFile(img, path, &got); err != nil {
			t.Errorf("%s: %v", path, err)
		} else if got.String() != want {
			t.Errorf("%s = %q; want %q", path, got.String(), want)
		}
	}
}

// The images, written each way and read back with go-containerregistry.
func TestImagesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	disk := writeFile(t, dir, "root.img", "an ext4 disk")
	kernel := writeFile(t, dir, "vmlinuz", "a kernel")
	initrd := writeFile(t, dir, "initrd.cpio", "an initramfs")
	cd, err := ContainerDisk(disk, stamp)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := KernelBoot(kernel, initrd, stamp)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{"registry.example/app:disk": cd, "registry.example/app:boot": kb}

	t.Run("oci", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "layout")
		if err := WriteImages(context.Background(), "oci:"+out, images); err != nil {
			t.Fatal(err)
		}
		idx, err := layout.ImageIndexFromPath(out)
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]v1.Hash{}
		for _, d := range m.Manifests {
			byName[d.Annotations["org.opencontainers.image.ref.name"]] = d.Digest
		}
		for ref, check := range map[string]func(v1.Image){
			"registry.example/app:disk": func(img v1.Image) { checkContainerDisk(t, img, "an ext4 disk") },
			"registry.example/app:boot": func(img v1.Image) { checkKernelBoot(t, img, "a kernel", "an initramfs") },
		} {
			img, err := idx.Image(byName[ref])
			if err != nil {
				t.Fatalf("%s: %v (layout has %v)", ref, err, byName)
			}
			check(img)
		}
	})
	t.Run("docker-archive", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "images.tar")
		if err := WriteImages(context.Background(), "docker-archive:"+out, images); err != nil {
			t.Fatal(err)
		}
		tag, _ := name.NewTag("registry.example/app:disk")
		img, err := tarball.ImageFromPath(out, &tag)
		if err != nil {
			t.Fatal(err)
		}
		checkContainerDisk(t, img, "an ext4 disk")
	})
	t.Run("registry", func(t *testing.T) {
		host := disktest.Registry(t, nil)
		pushed := map[string]v1.Image{host + "/app:disk": cd, host + "/app:boot": kb}
		if err := WriteImages(context.Background(), ToRegistry, pushed); err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(host + "/app:boot")
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		checkKernelBoot(t, img, "a kernel", "an initramfs")
	})
	// The same inputs give the same image.
	again, err := ContainerDisk(disk, stamp)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := cd.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds: digests %s and %s; want the same", d1, d2)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	disk := writeFile(t, dir, "root.img", "x")
	cd, err := ContainerDisk(disk, stamp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ContainerDisk(filepath.Join(dir, "missing.img"), stamp); err == nil {
		t.Error("ContainerDisk(missing file) succeeded")
	}
	if _, err := ContainerDisk(dir, stamp); err == nil {
		t.Error("ContainerDisk(a directory) succeeded")
	}
	archive := filepath.Join(dir, "out.tar")
	for _, tt := range []struct {
		to, ref, want string
	}{
		{"ftp://x", "a/b:1", "want docker://, oci:DIR or docker-archive:FILE"},
		{"oci:", "a/b:1", "want docker://"},
		{"docker-archive:" + archive, "a/b@sha256:" + strings.Repeat("0", 64), "needs a tag"},
		{"oci:" + dir, "Not A Ref!", "image reference"},
	} {
		err := WriteImages(context.Background(), tt.to, map[string]v1.Image{tt.ref: cd})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("WriteImages(%q, %q) = %v; want an error with %q", tt.to, tt.ref, err, tt.want)
		}
	}
	if _, err := os.Stat(archive); err == nil {
		t.Errorf("a failed write left %s behind", archive)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".export-*")); len(left) > 0 {
		t.Errorf("a failed write left %v behind", left)
	}
	for _, tt := range []struct {
		what string
		err  func() error
		want string
	}{
		{"VM name", func() error {
			_, err := (KubeVirt{Name: "My_VM", BootRef: "b", DiskRef: "d"}).VirtualMachine()
			return err
		}, "DNS label"},
		{"VM without disk or root", func() error { _, err := (KubeVirt{Name: "vm", BootRef: "b"}).VirtualMachine(); return err }, "diskless"},
		{"runStrategy", func() error {
			_, err := (KubeVirt{Name: "vm", BootRef: "b", DiskRef: "d", RunStrategy: "Sometimes"}).VirtualMachine()
			return err
		}, "runStrategy"},
		{"job type", func() error { _, err := (Nomad{Name: "j", BaseURL: "http://x", Type: "system"}).Job(); return err }, "batch or service"},
		{"port", func() error {
			_, err := (Nomad{Name: "j", BaseURL: "http://x", Ports: map[string]int{"http": 70000}}).Job()
			return err
		}, "LABEL=PORT"},
		{"MAC", func() error {
			_, err := (Tinkerbell{Name: "m", MAC: "52:54:00", BaseURL: "http://x", Root: "r/a:1"}).Hardware()
			return err
		}, "MAC address"},
		{"IP", func() error {
			_, err := (Tinkerbell{Name: "m", MAC: "52:54:00:12:34:56", BaseURL: "http://x", Root: "r/a:1", IP: "10.0.0.1"}).Hardware()
			return err
		}, "address/prefix"},
	} {
		if err := tt.err(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v; want one with %q", tt.what, err, tt.want)
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from its golden file (go test -update rewrites it); got:\n%s", name, got)
	}
}

// keyPaths lists every mapping key of a YAML document as a dotted path,
// sequences as [].
func keyPaths(t *testing.T, doc []byte) []string {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		t.Fatalf("YAML does not parse: %v", err)
	}
	var paths []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				paths = append(paths, p)
				walk(p, sub)
			}
		case []any:
			for _, sub := range v {
				walk(prefix+"[]", sub)
			}
		}
	}
	walk("", v)
	sort.Strings(paths)
	return paths
}

// documented checks every key path of doc against the field names the
// engine's API types declare.
func documented(t *testing.T, doc []byte, fields string) {
	t.Helper()
	known := map[string]bool{}
	for _, f := range strings.Fields(fields) {
		known[f] = true
	}
	for _, p := range keyPaths(t, doc) {
		if !known[p] && !strings.Contains(p, ".labels.") && !strings.HasSuffix(p, ".requests.memory") {
			t.Errorf("field %s is not one the API documents", p)
		}
	}
}

// kubevirtFields are the json names of kubevirt.io/v1's VirtualMachine
// (staging/src/kubevirt.io/api/core/v1: types.go VirtualMachineSpec,
// VirtualMachineInstanceSpec; schema.go DomainSpec, Firmware, KernelBoot,
// KernelBootContainer, Devices, Disk, DiskTarget, PanicDevice,
// ResourceRequirements, Volume, ContainerDiskSource).
const kubevirtFields = `apiVersion kind metadata metadata.name spec spec.runStrategy spec.template
spec.template.metadata spec.template.metadata.labels spec.template.spec
spec.template.spec.terminationGracePeriodSeconds spec.template.spec.domain
spec.template.spec.domain.firmware spec.template.spec.domain.firmware.kernelBoot
spec.template.spec.domain.firmware.kernelBoot.kernelArgs spec.template.spec.domain.firmware.kernelBoot.container
spec.template.spec.domain.firmware.kernelBoot.container.image spec.template.spec.domain.firmware.kernelBoot.container.kernelPath
spec.template.spec.domain.firmware.kernelBoot.container.initrdPath spec.template.spec.domain.devices
spec.template.spec.domain.devices.disks spec.template.spec.domain.devices.disks[].name
spec.template.spec.domain.devices.disks[].disk spec.template.spec.domain.devices.disks[].disk.bus
spec.template.spec.domain.devices.panicDevices spec.template.spec.domain.devices.panicDevices[].model
spec.template.spec.domain.resources spec.template.spec.domain.resources.requests
spec.template.spec.volumes spec.template.spec.volumes[].name spec.template.spec.volumes[].containerDisk
spec.template.spec.volumes[].containerDisk.image`

// tinkerbellFields are the json names of tinkerbell.org/v1alpha1's Hardware
// (api/v1alpha1 hardware_types.go: HardwareSpec, Interface, DHCP, IP,
// Netboot, IPXE).
const tinkerbellFields = `apiVersion kind metadata metadata.name metadata.namespace spec spec.interfaces
spec.interfaces[].dhcp spec.interfaces[].dhcp.mac spec.interfaces[].dhcp.hostname spec.interfaces[].dhcp.arch
spec.interfaces[].dhcp.uefi spec.interfaces[].dhcp.ip spec.interfaces[].dhcp.ip.address spec.interfaces[].dhcp.ip.netmask
spec.interfaces[].dhcp.ip.gateway spec.interfaces[].netboot spec.interfaces[].netboot.allowPXE
spec.interfaces[].netboot.allowWorkflow spec.interfaces[].netboot.ipxe spec.interfaces[].netboot.ipxe.contents`

func TestVirtualMachine(t *testing.T) {
	for _, tt := range []struct {
		golden string
		k      KubeVirt
	}{
		{"kubevirt-vm.yaml", KubeVirt{Name: "hello", BootRef: "registry.example/hello:boot", DiskRef: "registry.example/hello:disk",
			Append: `entrypoint="/app/server --port 8080"`}},
		{"kubevirt-diskless.yaml", KubeVirt{Name: "hello-diskless", BootRef: "registry.example/ginit:linuxboot",
			Root: "registry.example/hello:1", Append: "ginit.rootsize=256m", MemoryMiB: 512, RunStrategy: "Always"}},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := tt.k.VirtualMachine()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, got)
			documented(t, got, kubevirtFields)
			var vm kvVM
			if err := yaml.Unmarshal(got, &vm); err != nil {
				t.Fatal(err)
			}
			if got, want := vm.Spec.Template.Spec.Domain.Firmware.KernelBoot.KernelArgs, tt.k.KernelArgs(); got != want {
				t.Errorf("kernelArgs = %q; want %q", got, want)
			}
		})
	}
}

// nomadConfigFields are the qemu driver's task config attributes
// (drivers/qemu/driver.go taskConfigSpec), and nomadTaskFields the job
// specification's blocks and attributes the job uses.
const (
	nomadConfigFields = `image_path drive_interface accelerator graceful_shutdown guest_agent args port_map`
	nomadJobFields    = `job datacenters type group network port task driver kill_timeout artifact source destination mode config resources memory`
)

// hclNames lists the attribute and block names of an HCL file as the job
// file writes them: "name =" and "name {" or "name "label" {" at the start
// of a line; inside port_map, the labels are the user's.
func hclNames(t *testing.T, hcl string) (config, other []string) {
	t.Helper()
	inConfig, inPortMap, depth, configDepth := false, false, 0, 0
	for _, line := range strings.Split(hcl, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, `"`) || line == "]" {
			continue
		}
		if line == "}" {
			depth--
			if inPortMap && depth == configDepth {
				inPortMap = false
			} else if inConfig && depth == configDepth-1 {
				inConfig = false
			}
			continue
		}
		word := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '=' || r == '{' })[0]
		if !inPortMap {
			if inConfig {
				config = append(config, word)
			} else {
				other = append(other, word)
			}
		}
		if strings.HasSuffix(line, "{") {
			depth++
			switch {
			case word == "config":
				inConfig, configDepth = true, depth
			case word == "port_map":
				inPortMap = true
			}
		}
	}
	return config, other
}

func TestNomadJob(t *testing.T) {
	n := Nomad{Name: "hello", BaseURL: "https://artifacts.example/hello/", Ports: map[string]int{"http": 8080},
		Append: `entrypoint="/app/server --greeting ${NAME}"`}
	got, err := n.Job()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "nomad-job.hcl", got)
	config, other := hclNames(t, string(got))
	for _, list := range []struct {
		names []string
		known string
	}{{config, nomadConfigFields}, {other, nomadJobFields}} {
		for _, name := range list.names {
			if !strings.Contains(" "+list.known+" ", " "+name+" ") {
				t.Errorf("HCL name %s is not one Nomad documents (%s)", name, list.known)
			}
		}
	}
	if len(config) == 0 {
		t.Error("found no config attributes")
	}
	// What Nomad would run: the driver's arguments first, then the job's.
	args := n.DriverArgs("/alloc/hello", map[string]int{"http": 23456})
	want := "qemu-system-x86_64 -machine type=pc,accel=kvm -name disk.img -m 256M -drive file=local/disk.img,if=virtio -nographic " +
		"-monitor unix:/alloc/hello/qm.sock,server,nowait -kernel local/vmlinuz -initrd local/initramfs " +
		`-append console=ttyS0 panic=-1 ginit.onerror=poweroff entrypoint="/app/server --greeting ${NAME}" ` +
		"-device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot " +
		"-netdev user,id=user.0,hostfwd=udp::23456-:8080,hostfwd=tcp::23456-:8080 -device virtio-net,netdev=user.0 -enable-kvm -cpu host"
	if g := strings.Join(args, " "); g != want {
		t.Errorf("DriverArgs =\n%s\nwant\n%s", g, want)
	}
}

func TestHCLString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:         `"plain"`,
		`say "hi"`:      `"say \"hi\""`,
		`a\b`:           `"a\\b"`,
		"tab\there":     `"tab\u0009here"`,
		`${NOMAD_PORT}`: `"$${NOMAD_PORT}"`,
		`%{ if }`:       `"%%{ if }"`,
	} {
		if got := hclString(in); got != want {
			t.Errorf("hclString(%q) = %s; want %s", in, got, want)
		}
	}
}

func TestTinkerbellHardware(t *testing.T) {
	tb := Tinkerbell{Name: "rack1-node7", MAC: "52:54:00:12:34:56", Hostname: "node7", IP: "192.168.2.17/24", Gateway: "192.168.2.1",
		UEFI: true, BaseURL: "http://192.168.2.5:8080/ginit", Root: "192.168.2.5:5000/installer:1", Install: "/dev/sda"}
	got, err := tb.Hardware()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "tinkerbell-hardware.yaml", got)
	golden(t, "tinkerbell.ipxe", []byte(tb.Script()))
	documented(t, got, tinkerbellFields)
	if !strings.Contains(string(got), "contents: |") {
		t.Error("the iPXE script is not a literal block")
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if *update {
		fmt.Println("golden files rewritten")
	}
	os.Exit(code)
}
