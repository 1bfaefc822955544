package ext4img

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// mke2fsConf replaces the host's /etc/mke2fs.conf, so that the same
// e2fsprogs release makes the same file system on any host.
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`

// Params describe one mkfs.ext4 run.
type Params struct {
	Dir      string // tree to copy in (mkfs.ext4 -d)
	Layout   Layout
	Label    string
	UUID     [16]byte
	HashSeed [16]byte
	// Time stamps the file system (creation, write, check, the root and
	// lost+found inodes). mkfs.ext4 cannot be given 0; Patch and
	// SetSuperblockTimes fix what it wrote instead.
	Time int64
}

// ErrNoSpace is returned when the content did not fit.
var ErrNoSpace = errors.New("content does not fit in the file system")

// FormatUUID prints a UUID the way mkfs.ext4 -U reads it.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// ParseUUID reads a UUID in its usual 8-4-4-4-12 hex form.
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("UUID %q: want the form 01234567-89ab-cdef-0123-456789abcdef", s)
	}
	for i := range u {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return u, fmt.Errorf("UUID %q: %w", s, err)
		}
		u[i] = byte(v)
	}
	return u, nil
}

// Tool finds an e2fsprogs program, with an error that says what to
// install.
func Tool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		// Debian keeps them in /sbin, which is not on every user's PATH.
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if fi, serr := os.Stat(dir + "/" + name); serr == nil && fi.Mode().IsRegular() {
				return dir + "/" + name, nil
			}
		}
		return "", fmt.Errorf("%s not found (install e2fsprogs 1.43 or later): %w", name, err)
	}
	return p, nil
}

// toolEnv is the environment for e2fsprogs programs: the caller's, less
// the variables that change what they write, plus a fixed time.
func toolEnv(conf string, t int64) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MKE2FS_") || strings.HasPrefix(kv, "E2FSPROGS_") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C", "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(max(t, 1), 10), "E2FSPROGS_LIBMAGIC_SUPPRESS=1")
	if conf != "" {
		env = append(env, "MKE2FS_CONFIG="+conf)
	}
	return env
}

// Make formats the existing regular file img with the tree p.Dir in it.
func Make(ctx context.Context, img string, p Params) error {
	mkfs, err := Tool("mkfs.ext4")
	if err != nil {
		return err
	}
	conf, err := os.CreateTemp("", "oci2disk-mke2fs-*.conf")
	if err != nil {
		return err
	}
	defer os.Remove(conf.Name())
	if _, err := conf.WriteString(mke2fsConf); err != nil {
		conf.Close()
		return err
	}
	if err := conf.Close(); err != nil {
		return err
	}
	if err := os.Truncate(img, p.Layout.Size); err != nil {
		return err
	}
	blocks := p.Layout.Size / BlockSize
	args := []string{
		"-q", "-F", "-t", "ext4", "-b", strconv.Itoa(BlockSize), "-I", strconv.Itoa(InodeSize),
		"-N", strconv.FormatInt(p.Layout.Inodes, 10),
		"-m", "0",
		"-J", "size=" + strconv.FormatInt(p.Layout.JournalBlocks*BlockSize>>20, 10),
		"-L", p.Label,
		"-U", FormatUUID(p.UUID),
		"-E", "root_owner=0:0,hash_seed=" + FormatUUID(p.HashSeed) + ",lazy_itable_init=0,lazy_journal_init=0,nodiscard",
		"-d", p.Dir,
		img, strconv.FormatInt(blocks, 10),
	}
	cmd := exec.CommandContext(ctx, mkfs, args...)
	cmd.Env = toolEnv(conf.Name(), p.Time)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(out.String())
		if strings.Contains(msg, "Could not allocate") || strings.Contains(msg, "No space left") {
			return fmt.Errorf("mkfs.ext4 -d %s: %w: %s", p.Dir, ErrNoSpace, lastLine(msg))
		}
		return fmt.Errorf("mkfs.ext4 -d %s %s: %w: %s", p.Dir, img, err, msg)
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
