// Package dhcp6 is the IPv6 side of ginit's network: a DHCPv6 client (RFC
// 8415: addresses with IA_NA, or DNS alone with Information-request) as a
// state machine fed the time and the messages that arrive, like dhcp4, and
// the reading of router advertisements (RFC 4861, RDNSS and DNSSL of RFC
// 8106). Messages are encoded here: the handful of options a client needs
// take less image than a general DHCPv6 library.
package dhcp6

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
)

// Message types.
const (
	Solicit            = 1
	Advertise          = 2
	Request            = 3
	Renew              = 5
	Rebind             = 6
	Reply              = 7
	Release            = 8
	InformationRequest = 11
)

// Option codes.
const (
	OptClientID        = 1
	OptServerID        = 2
	OptIANA            = 3
	OptIAAddr          = 5
	OptORO             = 6
	OptElapsedTime     = 8
	OptStatusCode      = 13
	OptRapidCommit     = 14
	OptDNSServers      = 23
	OptDomainList      = 24
	OptInfoRefreshTime = 32
)

// Ports and the address of every DHCPv6 server on a link.
const (
	ClientPort = 546
	ServerPort = 547
)

// AllServers is All_DHCP_Relay_Agents_and_Servers.
var AllServers = netip.MustParseAddr("ff02::1:2")

// Option is one option, its data undecoded.
type Option struct {
	Code uint16
	Data []byte
}

// Message is a client/server message.
type Message struct {
	Type    uint8
	XID     [3]byte
	Options []Option
}

// Parse reads a client/server message.
func Parse(b []byte) (*Message, error) {
	if len(b) < 4 {
		return nil, errors.New("dhcpv6: short message")
	}
	m := &Message{Type: b[0], XID: [3]byte(b[1:4])}
	opts, err := parseOptions(b[4:])
	m.Options = opts
	return m, err
}

func parseOptions(b []byte) ([]Option, error) {
	var opts []Option
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("dhcpv6: truncated option")
		}
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return nil, errors.New("dhcpv6: truncated option")
		}
		opts = append(opts, Option{Code: code, Data: b[4 : 4+n]})
		b = b[4+n:]
	}
	return opts, nil
}

// Bytes encodes the message.
func (m *Message) Bytes() []byte {
	b := []byte{m.Type, m.XID[0], m.XID[1], m.XID[2]}
	return appendOptions(b, m.Options)
}

func appendOptions(b []byte, opts []Option) []byte {
	for _, o := range opts {
		b = binary.BigEndian.AppendUint16(b, o.Code)
		b = binary.BigEndian.AppendUint16(b, uint16(len(o.Data)))
		b = append(b, o.Data...)
	}
	return b
}

// Get returns the data of the first option with code, or nil.
func Get(opts []Option, code uint16) []byte {
	for _, o := range opts {
		if o.Code == code {
			if o.Data == nil {
				return []byte{}
			}
			return o.Data
		}
	}
	return nil
}

// status returns the status code in opts; 0 (success) when there is none.
func status(opts []Option) uint16 {
	if s := Get(opts, OptStatusCode); len(s) >= 2 {
		return binary.BigEndian.Uint16(s)
	}
	return 0
}

// addrs16 reads a list of IPv6 addresses.
func addrs16(b []byte) []netip.Addr {
	var out []netip.Addr
	for ; len(b) >= 16; b = b[16:] {
		out = append(out, netip.AddrFrom16([16]byte(b[:16])))
	}
	return out
}

// Names reads a list of domain names in DNS wire format without
// compression (RFC 1035 3.1), as DHCPv6 option 24 and DNSSL carry them;
// zero padding after the last is skipped.
func Names(b []byte) []string {
	var names []string
	var labels []string
	for len(b) > 0 {
		n := int(b[0])
		b = b[1:]
		if n == 0 {
			if len(labels) > 0 {
				names = append(names, strings.Join(labels, "."))
			}
			labels = nil
			continue
		}
		if n > 63 || n > len(b) {
			break
		}
		labels = append(labels, string(b[:n]))
		b = b[n:]
	}
	return names
}

// AppendName encodes name in DNS wire format.
func AppendName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l == "" || len(l) > 63 {
			continue
		}
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}
