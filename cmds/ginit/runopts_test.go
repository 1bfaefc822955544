package main

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/klog"
	"github.com/ginit-dev/ginit/internal/mounts"
	"github.com/ginit-dev/ginit/internal/netconf"
	"github.com/ginit-dev/ginit/internal/rundoc"
)

// The document's mounts come out as mount(2) calls, parents first, with
// docker's tmpfs defaults, those below /dev, /proc, /sys, /run and /tmp
// apart.
func TestRunMounts(t *testing.T) {
	doc, err := rundoc.Parse([]byte(`{"version":1,"tmpfs":{"/a/b":"size=1m,exec","/a":"","/run/x":"","/tmpfoo":""},
		"volumes":[{"type":"virtiofs","source":"ginit-fs0","target":"/a/c","read_only":true},{"type":"virtiofs","source":"ginit-fs1","target":"/0"},
		{"type":"virtiofs","source":"ginit-fs2","target":"/tmp/in"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := &system{b: newBoot(klog.NewWriter(nil))}
	got, err := s.runMounts(doc, false)
	if err != nil {
		t.Fatalf("runMounts = %v", err)
	}
	want := []mounts.Mount{
		{Source: "ginit-fs1", Target: "/0", FSType: "virtiofs"},
		{Source: "tmpfs", Target: "/a", FSType: "tmpfs", Flags: mounts.TmpfsDefaults},
		{Source: "tmpfs", Target: "/a/b", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "size=1m"},
		{Source: "ginit-fs0", Target: "/a/c", FSType: "virtiofs", Flags: unix.MS_RDONLY},
		{Source: "tmpfs", Target: "/tmpfoo", FSType: "tmpfs", Flags: mounts.TmpfsDefaults},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("runMounts(early) =\n%v\nwant\n%v", got, want)
	}
	// Below the mounts prepareRoot makes: after them, or they would hide these.
	got, err = s.runMounts(doc, true)
	want = []mounts.Mount{
		{Source: "tmpfs", Target: "/run/x", FSType: "tmpfs", Flags: mounts.TmpfsDefaults},
		{Source: "ginit-fs2", Target: "/tmp/in", FSType: "virtiofs"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("runMounts(late) =\n%v, %v\nwant\n%v", got, err, want)
	}
}

func TestNetParams(t *testing.T) {
	doc, err := rundoc.Parse([]byte(`{"version":1,"dns":["192.0.2.53"],"extra_hosts":["db:10.0.0.2","v6:2001:db8::1"]}`))
	if err != nil {
		t.Fatal(err)
	}
	p := netParams(bootcfg.Config{IP: []string{"dhcp"}}, doc)
	want := netconf.Params{IP: []string{"dhcp"}, DNS: p.DNS, Hosts: []string{"10.0.0.2\tdb", "2001:db8::1\tv6"}}
	if len(p.DNS) != 1 || p.DNS[0].String() != "192.0.2.53" || !reflect.DeepEqual(p, want) {
		t.Errorf("netParams = %+v; want %+v with DNS [192.0.2.53]", p, want)
	}
}
