package guard

import (
	"net/netip"
	"sort"
	"strings"

	"github.com/palisade-sbc/palisade/internal/config"
)

// PeerRanges finds the peer a source address belongs to by the CIDR ranges
// of peers[].trunk.ranges (Teams Direct Routing signals from 52.112.0.0/14
// and 52.120.0.0/14, "Plan Direct Routing"; its addresses within them
// change without notice, so resolving sip.pstnhub.microsoft.com is not
// enough). A range counts only on the peer's interface. The most specific
// range wins; between equal ranges, configuration order.
type PeerRanges struct {
	entries []rangeEntry // most specific first
}

type rangeEntry struct {
	prefix netip.Prefix
	peer   string
	iface  string
}

// NewPeerRanges indexes the ranges of peers; ranges that do not parse are
// skipped (validation refuses them).
func NewPeerRanges(peers []config.Peer) *PeerRanges {
	pr := &PeerRanges{}
	for _, p := range peers {
		for _, r := range p.Trunk.Ranges {
			pf, err := netip.ParsePrefix(strings.TrimSpace(r))
			if err != nil {
				continue
			}
			pf = netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()-unmapBits(pf)).Masked()
			pr.entries = append(pr.entries, rangeEntry{pf, p.Name, p.Interface})
		}
	}
	sort.SliceStable(pr.entries, func(i, j int) bool { return pr.entries[i].prefix.Bits() > pr.entries[j].prefix.Bits() })
	return pr
}

// unmapBits is 96 for an IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/n), whose
// bits count the mapping prefix too.
func unmapBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return 96
	}
	return 0
}

// Lookup returns the peer whose range holds a and that is allowed on iface
// (its interface, or any when it has none); "" when none.
func (pr *PeerRanges) Lookup(a netip.Addr, iface string) string {
	if pr == nil {
		return ""
	}
	a = a.Unmap()
	for _, e := range pr.entries {
		if e.prefix.Contains(a) && (e.iface == "" || iface == "" || e.iface == iface) {
			return e.peer
		}
	}
	return ""
}

// RangePeer returns the peer whose trunk.ranges hold addr on iface under
// the applied configuration ("" = none), for the SIP layer to name the
// source peer of a request (routing, number rules, trust).
func (g *Guard) RangePeer(addr netip.Addr, iface string) string {
	return g.pol.Load().ranges.Lookup(addr, iface)
}
