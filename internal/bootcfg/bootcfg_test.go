package bootcfg

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, warns := Parse("")
	if len(warns) != 0 {
		t.Errorf("Parse(\"\") warnings = %v; want none", warns)
	}
	if c.Root != "LABEL=ginit-root" || c.RootWait != 10*time.Second || c.OnExit != PowerOff || c.OnError != Shell || c.StopTimeout != 10*time.Second {
		t.Errorf("Parse(\"\") = %+v; want the documented defaults", c)
	}
}

func TestParse(t *testing.T) {
	c, warns := Parse(`console=ttyS0 root=UUID=ABCD rootfstype=ext4 ro rootwait ` +
		`entrypoint="/bin/app -v 'a b'" ginit.cmd="x y" ginit.env=A=1 "ginit.env=B=two words" ` +
		`ginit.workdir=/srv ginit.user=app:staff ip=off ginit.netwait=500ms ginit.modules=e1000,virtio_net ` +
		`ginit.onexit=reboot ginit.onerror=poweroff ginit.rebootdelay=30s ginit.shell=1 ginit.stoptimeout=3 ginit.debug quiet ginit.debugexit=0x501 root=/dev/vda ` +
		`ginit.mode=boot ginit.rootsize=768m ginit.install=/dev/vdb root=docker://10.0.2.2:5000/app:1 ` +
		`osboot.entry="Debian GNU/Linux" osboot.append="console=ttyS0 quiet" loglevel=7`)
	if len(warns) != 0 {
		t.Fatalf("warnings = %v; want none", warns)
	}
	want := Defaults()
	want.Root = "docker://10.0.2.2:5000/app:1" // the last root= wins
	want.RootGiven = true
	want.Mode = BootOS
	want.RootSize = "768m"
	want.Install = "/dev/vdb"
	want.RootFSType = "ext4"
	want.ReadOnly = true
	want.RootWait = 24 * time.Hour
	want.Entrypoint, want.HasEntrypoint = []string{"/bin/app", "-v", "a b"}, true
	want.Cmd, want.HasCmd = []string{"x", "y"}, true
	want.Env = []string{"A=1", "B=two words"}
	want.Workdir = "/srv"
	want.User = "app:staff"
	want.IP = []string{"off"}
	want.NetWait = 500 * time.Millisecond
	want.Modules = []string{"e1000", "virtio_net"}
	want.OnExit = Reboot
	want.OnError = PowerOff
	want.RebootDelay = 30 * time.Second
	want.Shell = true
	want.StopTimeout = 3 * time.Second
	want.Debug = true
	want.Quiet = true
	want.DebugExitPort = 0x501
	want.OsbootEntry = "Debian GNU/Linux"
	want.OsbootAppend = "console=ttyS0 quiet"
	want.KeepKernelLogLevel = true
	want.Unknown = c.Unknown
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse() =\n%+v\nwant\n%+v", c, want)
	}
	if len(c.Unknown) != 1 || c.Unknown[0].Key != "console" {
		t.Errorf("Unknown = %v; want [console=ttyS0]", c.Unknown)
	}
}

// Each bad value gives one warning naming its parameter, and the default
// stays in force.
func TestBadValuesKeepDefaults(t *testing.T) {
	for _, tt := range []struct {
		param string
		check func(Config) bool
	}{
		{"ginit.rootwait=soon", func(c Config) bool { return c.RootWait == 10*time.Second }},
		{"rootdelay=-1", func(c Config) bool { return c.RootWait == 10*time.Second }},
		{"ginit.onexit=explode", func(c Config) bool { return c.OnExit == PowerOff }},
		{"ginit.onerror=reboot-twice", func(c Config) bool { return c.OnError == Shell }},
		{"ginit.rebootdelay=later", func(c Config) bool { return c.RebootDelay == 10*time.Second }},
		{"ginit.stoptimeout=-5s", func(c Config) bool { return c.StopTimeout == 10*time.Second }},
		{"ginit.env=NOEQUALS", func(c Config) bool { return len(c.Env) == 0 }},
		{"ginit.env==x", func(c Config) bool { return len(c.Env) == 0 }},
		{"ginit.workdir=relative", func(c Config) bool { return c.Workdir == "" }},
		{`entrypoint="/bin/sh -c 'unterminated"`, func(c Config) bool { return !c.HasEntrypoint }},
		{"ginit.shell=maybe", func(c Config) bool { return !c.Shell }},
		{"ginit.debugexit=port", func(c Config) bool { return c.DebugExitPort == 0xf4 }},
		{"root=", func(c Config) bool { return c.Root == "LABEL=ginit-root" && !c.RootGiven }},
		{"ginit.mode=firmware", func(c Config) bool { return c.Mode == Auto }},
		{"ginit.rootsize=lots", func(c Config) bool { return c.RootSize == "50%" }},
		{"ginit.rootsize=150%", func(c Config) bool { return c.RootSize == "50%" }},
		{"ginit.rootsize=0", func(c Config) bool { return c.RootSize == "50%" }},
		{"ginit.rootsize=1gg", func(c Config) bool { return c.RootSize == "50%" }},
		{"ginit.install=vda", func(c Config) bool { return c.Install == "" }},
		{"ginit.install=/dev/vda", func(c Config) bool { return c.Install == "" }}, // no image to install
		{"ginit.typo=1", func(c Config) bool { return true }},
		{"osboot.typo=1", func(c Config) bool { return true }},
		{"osboot.entry=", func(c Config) bool { return c.OsbootEntry == "" }},
	} {
		c, warns := Parse(tt.param)
		key, _, _ := strings.Cut(tt.param, "=")
		if len(warns) != 1 || !strings.Contains(warns[0].Error(), key) {
			t.Errorf("Parse(%q) warnings = %v; want one naming %s", tt.param, warns, key)
		}
		if !tt.check(c) {
			t.Errorf("Parse(%q) = %+v; want the default kept", tt.param, c)
		}
	}
}

func TestIsImageRef(t *testing.T) {
	for root, want := range map[string]bool{
		"docker://10.0.2.2:5000/app:latest": true,
		"oci:http://10.0.2.2:8080/layout":   true,
		"/dev/vda":                          false,
		"LABEL=ginit-root":                  false,
		"docker.io/library/alpine":          false, // a disk name could look like that; refs need the scheme
	} {
		if got := IsImageRef(root); got != want {
			t.Errorf("IsImageRef(%q) = %v; want %v", root, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`root=/dev/vda entrypoint="/bin/x 'a b'" ginit.env=A=1 ginit.netwait=1s`)
	f.Add(`ginit.rootwait=1e308 rootdelay=99999999999999999999`)
	f.Fuzz(func(t *testing.T, line string) {
		c, _ := Parse(line)
		if c.RootWait < 0 || c.NetWait < 0 || c.StopTimeout < 0 {
			t.Fatalf("Parse(%q) gave a negative duration: %+v", line, c)
		}
		if c.OnExit == "" || c.OnError == "" {
			t.Fatalf("Parse(%q) left an action empty", line)
		}
	})
}
