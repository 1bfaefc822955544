package ext4w

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/csum"
)

// Extended attributes are stored as the kernel's fs/ext4/xattr.h has them:
// entries with a name index (the namespace) and the rest of the name, and
// values, in the inode past its extra fields or in one block of their own.
const (
	xattrMagic       = 0xEA020000
	xattrInodeStart  = 128 + 32 // i_extra_isize ends here; the in-inode area starts
	xattrBlockHeader = 32
	xattrEntryHeader = 16
)

var xattrPrefixes = []struct {
	prefix string
	index  uint8
}{
	{"system.posix_acl_access", 2}, // whole names, before "system."
	{"system.posix_acl_default", 3},
	{"user.", 1},
	{"trusted.", 4},
	{"security.", 6},
	{"system.", 7},
}

// ErrXattr: an extended attribute ext4 cannot hold.
var ErrXattr = errors.New("extended attribute not supported by ext4")

type xentry struct {
	index uint8
	name  string // without the prefix
	value []byte
}

func (e *xentry) size() int { return xattrEntryHeader + pad4(len(e.name)) }

func pad4(n int) int { return (n + 3) &^ 3 }

// encodeXattrs turns a node's attributes into entries, sorted as the kernel
// sorts a block's: by index, name length, name.
func encodeXattrs(xs []Xattr) ([]xentry, error) {
	out := make([]xentry, 0, len(xs))
	for _, x := range xs {
		e := xentry{value: x.Value}
		found := false
		for _, p := range xattrPrefixes {
			if rest, ok := strings.CutPrefix(x.Name, p.prefix); ok {
				if (p.index == 2 || p.index == 3) && rest != "" {
					continue
				}
				e.index, e.name, found = p.index, rest, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%q: %w: unknown namespace", x.Name, ErrXattr)
		}
		if len(e.name) > 255 {
			return nil, fmt.Errorf("%q: %w: name longer than 255 bytes", x.Name, ErrXattr)
		}
		if e.index == 2 || e.index == 3 {
			v, err := aclToDisk(x.Value)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", x.Name, err)
			}
			e.value = v
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.index != b.index {
			return a.index < b.index
		}
		if len(a.name) != len(b.name) {
			return len(a.name) < len(b.name)
		}
		return a.name < b.name
	})
	return out, nil
}

// checkXattrs says whether a node's attributes fit the inode and one
// block, naming the largest when they do not. Values in inodes of their
// own (ext4's ea_inode) are not written: such attributes are refused.
func checkXattrs(xs []Xattr) error {
	if len(xs) == 0 {
		return nil
	}
	es, err := encodeXattrs(xs)
	if err != nil {
		return err
	}
	if _, _, err := splitXattrs(es, ext4fs.InodeSize); err != nil {
		big := xs[0]
		for _, x := range xs[1:] {
			if len(x.Value) > len(big.Value) {
				big = x
			}
		}
		return fmt.Errorf("%w (the largest, %q, has %d bytes); values in inodes of their own (ea_inode) are not written", err, big.Name, len(big.Value))
	}
	return nil
}

// splitXattrs puts as many entries as fit into the inode and the rest in a
// block, or says they do not fit.
func splitXattrs(es []xentry, inodeSize int) (inline, block []xentry, err error) {
	room := inodeSize - xattrInodeStart - 4 - 4 // magic, end marker
	used := 0
	i := 0
	for ; i < len(es); i++ {
		need := es[i].size() + pad4(len(es[i].value))
		if used+need > room {
			break
		}
		used += need
	}
	inline, block = es[:i], es[i:]
	if len(block) > 0 {
		total := xattrBlockHeader + 4
		for _, e := range block {
			total += e.size() + pad4(len(e.value))
		}
		if total > BlockSize {
			return nil, nil, fmt.Errorf("%w: %d bytes of attributes, more than the inode and one block hold", ErrXattr, total)
		}
	}
	return inline, block, nil
}

// putEntries writes entries at b[0:] and values downwards from b[end:],
// value offsets counted from base (the start of b for the inode, the block
// for a block); an empty value has offset 0, as the kernel writes it.
func putEntries(b []byte, es []xentry, valueEnd int, base int) {
	off := 0
	vend := valueEnd
	for _, e := range es {
		vlen := len(e.value)
		vend -= pad4(vlen)
		copy(b[vend:], e.value)
		b[off] = byte(len(e.name))
		b[off+1] = e.index
		if vlen > 0 {
			le.PutUint16(b[off+2:], uint16(vend+base))
		}
		le.PutUint32(b[off+4:], 0) // e_value_inum
		le.PutUint32(b[off+8:], uint32(vlen))
		le.PutUint32(b[off+12:], xattrHash(e))
		copy(b[off+16:], e.name)
		off += e.size()
	}
}

// putInlineXattrs writes entries into the inode's area past its extra
// fields.
func putInlineXattrs(ino []byte, es []xentry) {
	if len(es) == 0 {
		return
	}
	area := ino[xattrInodeStart:]
	le.PutUint32(area, xattrMagic)
	entries := area[4:]
	// In the inode, value offsets count from the first entry.
	putEntries(entries, es, len(entries), 0)
}

// xattrBlock is the block holding entries es, checksummed for block
// number blk.
func xattrBlock(es []xentry, seed uint32, blk uint64) []byte {
	b := make([]byte, BlockSize)
	le.PutUint32(b[0:], xattrMagic)
	le.PutUint32(b[4:], 1) // h_refcount
	le.PutUint32(b[8:], 1) // h_blocks
	putEntries(b[xattrBlockHeader:], es, BlockSize-xattrBlockHeader, xattrBlockHeader)
	var h uint32
	for _, e := range es {
		h = h<<16 ^ h>>16 ^ xattrHash(e)
	}
	le.PutUint32(b[12:], h)
	var nr [8]byte
	le.PutUint64(nr[:], blk)
	c := csum.CRC32c(seed, nr[:])
	c = csum.CRC32c(c, b)
	le.PutUint32(b[16:], c)
	return b
}

// xattrHash is ext4_xattr_hash_entry, with the name's bytes signed as
// e2fsprogs and x86 kernels take them.
func xattrHash(e xentry) uint32 {
	var h uint32
	for i := 0; i < len(e.name); i++ {
		h = h<<5 ^ h>>27 ^ uint32(int32(int8(e.name[i])))
	}
	v := e.value
	for i := 0; i < len(v); i += 4 {
		var w [4]byte
		copy(w[:], v[i:])
		h = h<<16 ^ h>>16 ^ binary.LittleEndian.Uint32(w[:])
	}
	return h
}

// POSIX ACLs: the xattr form (version 2, every entry 8 bytes) becomes
// ext4's (version 1, 4-byte entries for those without an id).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

func aclToDisk(v []byte) ([]byte, error) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || le.Uint32(v) != 2 {
		return nil, fmt.Errorf("%w: not a POSIX ACL (version 2)", ErrXattr)
	}
	out := []byte{1, 0, 0, 0}
	for p := v[4:]; len(p) > 0; p = p[8:] {
		tag, perm, id := le.Uint16(p), le.Uint16(p[2:]), le.Uint32(p[4:])
		switch tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			out = le.AppendUint16(out, tag)
			out = le.AppendUint16(out, perm)
		case aclUser, aclGroup:
			out = le.AppendUint16(out, tag)
			out = le.AppendUint16(out, perm)
			out = le.AppendUint32(out, id)
		default:
			return nil, fmt.Errorf("%w: ACL entry tag %#x", ErrXattr, tag)
		}
	}
	return out, nil
}
