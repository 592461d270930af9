package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// HA is the takeover of calls by another unit of a cluster (docs/ha.md):
// interface addresses that float between units, elected through etcd.
type HA struct {
	// Floating lists the interfaces whose address is a floating address:
	// the same address on every unit, carried by one unit at a time.
	Floating []Floating `json:"floating"`
	// Lease is the time to live of the owner's etcd lease: a unit that
	// dies loses its addresses this long after its last renewal.
	Lease Duration `json:"lease"`
	// Preference lists unit names in the order they should own the
	// addresses; units not listed come after them.
	Preference []string `json:"preference"`
	// Mode is how a unit carries on the calls of a unit that died:
	// "move" (or empty) takes its floating addresses over; "rehome" (no
	// floating addresses: networks where addresses cannot move) re-INVITEs
	// both parties of each call with this unit's Contact and media.
	Mode string `json:"mode,omitempty"`
}

// HA modes.
const (
	HAModeMove   = "move"
	HAModeRehome = "rehome"
)

// Rehome reports whether the calls of a dead unit are re-INVITEd to
// another unit's own addresses rather than taken over with its addresses.
func (h HA) Rehome() bool { return h.Mode == HAModeRehome }

// Floating makes an interface's address a floating address.
type Floating struct {
	Interface    string `json:"interface"`     // a network.interfaces name
	Link         string `json:"link"`          // the host's network interface the address goes on (eth0, lo)
	PrefixLength int    `json:"prefix_length"` // of the address on the link; 0 = 32 (IPv4) or 128 (IPv6)
}

// MinHALease is the shortest ha.lease (etcd raises a lease below its own
// minimum, 2 s by default, to that minimum anyway).
const MinHALease = time.Second

// FloatingPrefix returns the address of f with its prefix length on the
// link, from the interface of cfg it names.
func (c *Config) FloatingPrefix(f Floating) (netip.Prefix, error) {
	for _, in := range c.Network.Interfaces {
		if in.Name != f.Interface {
			continue
		}
		a, err := netip.ParseAddr(in.Address)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("interface %s: address %q: %w", in.Name, in.Address, err)
		}
		bits := f.PrefixLength
		if bits == 0 {
			bits = a.BitLen()
		}
		if bits < 0 || bits > a.BitLen() {
			return netip.Prefix{}, fmt.Errorf("prefix length %d for %s", bits, a)
		}
		return netip.PrefixFrom(a, bits), nil
	}
	return netip.Prefix{}, fmt.Errorf("no network interface named %q", f.Interface)
}

func (v *validator) ha() {
	h := v.c.HA
	switch h.Mode {
	case "", HAModeMove:
	case HAModeRehome:
		if len(h.Floating) > 0 {
			v.add("ha.floating", "must be empty with ha.mode \"rehome\": the calls move to another unit's own addresses")
		}
		if h.Lease.D() < MinHALease {
			v.add("ha.lease", "%v is too short (at least %v)", h.Lease.D(), MinHALease)
		}
	default:
		v.add("ha.mode", "%q is not \"move\" or \"rehome\"", h.Mode)
	}
	if len(h.Floating) == 0 {
		return
	}
	if h.Lease.D() < MinHALease {
		v.add("ha.lease", "%v is too short (at least %v)", h.Lease.D(), MinHALease)
	}
	seen := map[string]int{}
	for i, f := range h.Floating {
		p := fmt.Sprintf("ha.floating[%d]", i)
		if j, dup := seen[f.Interface]; dup {
			v.add(p+".interface", "%q is already listed at ha.floating[%d]", f.Interface, j)
			continue
		}
		seen[f.Interface] = i
		if !validLinkName(f.Link) {
			v.add(p+".link", "%q is not a network interface name (1-15 characters, no '/' or space)", f.Link)
		}
		var addr string
		found := false
		for _, in := range v.c.Network.Interfaces {
			if in.Name == f.Interface {
				addr, found = in.Address, true
			}
		}
		if !found {
			v.add(p+".interface", "no network interface named %q", f.Interface)
			continue
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			continue // reported at network.interfaces
		}
		if a.IsUnspecified() {
			v.add(p+".interface", "the address of %q is %s; a floating address is one address", f.Interface, a)
		}
		if f.PrefixLength < 0 || f.PrefixLength > a.BitLen() {
			v.add(p+".prefix_length", "%d is outside 0-%d for %s", f.PrefixLength, a.BitLen(), a)
		}
		for n, u := range v.c.Units {
			for _, ui := range u.Interfaces {
				if ui.Name == f.Interface && ui.Address != "" && ui.Address != addr {
					v.add("units."+n+".interfaces", "%q has floating address %s, the same on every unit; %s here", f.Interface, addr, ui.Address)
				}
			}
		}
	}
	for i, u := range h.Preference {
		if !validUnitName(u) {
			v.add(fmt.Sprintf("ha.preference[%d]", i), "%q is not a unit name", u)
		}
	}
	v.uniqueStrings("ha.preference", h.Preference)
}

// validLinkName: what Linux accepts as an interface name.
func validLinkName(s string) bool {
	return s != "" && len(s) <= 15 && s != "." && s != ".." &&
		!slices.ContainsFunc([]rune(s), func(r rune) bool { return r == '/' || r == ':' || r <= ' ' })
}
