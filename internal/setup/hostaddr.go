package setup

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// HostAddr is one address configured on one of the machine's interfaces.
type HostAddr struct {
	Interface string       // e.g. eth0
	Prefix    netip.Prefix // the address with its network's length
}

// SystemAddrs lists the addresses of the machine's interfaces in interface
// order (the default of Env.Addrs).
func SystemAddrs() ([]HostAddr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []HostAddr
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue // an interface gone meanwhile: offer the others
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			out = append(out, HostAddr{Interface: ifc.Name, Prefix: netip.PrefixFrom(ip.Unmap(), ones)})
		}
	}
	return out, nil
}

// usableAddrs keeps the addresses a SIP interface can use (no loopback,
// link-local or unspecified ones), IPv4 before IPv6, otherwise in the
// order found.
func usableAddrs(in []HostAddr) []HostAddr {
	var v4, v6 []HostAddr
	for _, a := range in {
		ip := a.Prefix.Addr()
		if !a.Prefix.IsValid() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
			continue
		}
		if ip.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return slices.Concat(v4, v6)
}

// addressDefaults proposes the inside address (the first usable address,
// with its prefix so that the administrator's network is allowed on the
// admin listener) and the outside address (the second, else the first), as
// the seed's start-up tool offers the addresses it finds.
func addressDefaults(found []HostAddr) (inside, outside string) {
	u := usableAddrs(found)
	if len(u) == 0 {
		return "", ""
	}
	inside = u[0].Prefix.String()
	outside = u[0].Prefix.Addr().String()
	if len(u) > 1 {
		outside = u[1].Prefix.Addr().String()
	}
	return inside, outside
}

// describeAddrs is the list of usable addresses shown before the questions.
func describeAddrs(found []HostAddr) string {
	var parts []string
	for _, a := range usableAddrs(found) {
		parts = append(parts, fmt.Sprintf("%s (%s)", a.Prefix, a.Interface))
	}
	return strings.Join(parts, ", ")
}
