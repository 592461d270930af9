package routing

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// PeerHops returns the hops of the named peer in the order to try them,
// with user as Request-URI user: its address or domain, then each of
// trunk.targets. A host that routing.dns_override lists is replaced by the
// override's targets (by priority, RFC 2782 weights within one), so that an
// override written for a peer's name is used for calls to the peer, not
// only for requests whose Request-URI carries that name. nil when there is
// no such peer.
func (t *Table) PeerHops(name, user string) []Hop {
	p, ok := t.Peer(name)
	if !ok {
		return nil
	}
	first := t.peerHop(p, user)
	hosts := []Hop{first}
	for _, s := range p.Trunk.Targets {
		h := first
		h.Host, h.Port = splitHostPort(s)
		hosts = append(hosts, h)
	}
	var out []Hop
	seen := map[string]bool{}
	add := func(h Hop) {
		k := strings.ToLower(h.Host) + "|" + h.Transport + "|" + strconv.Itoa(h.Port)
		if !seen[k] {
			seen[k] = true
			out = append(out, h)
		}
	}
	for _, h := range hosts {
		ov := t.overrides[strings.ToLower(strings.TrimSuffix(h.Host, "."))]
		if len(ov) == 0 {
			add(h)
			continue
		}
		ts := make([]Target, len(ov))
		for i, o := range ov {
			ts[i] = Target{Priority: o.Priority, Weight: o.Weight}
		}
		for _, i := range OrderByPriorityWeight(ts, rand.IntN) {
			o := h
			o.Host, o.Port = ov[i].Host, ov[i].Port
			if tr := normTransport(ov[i].Transport); tr != "" {
				o.Transport = tr
			}
			add(o)
		}
	}
	return out
}
