package b2bua

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/keepalive"
	"github.com/palisade-sbc/palisade/internal/sip/trunk"
)

// PeerState is a peer's keepalive state (for `palisade status peers`),
// summed up from the states of its targets (Targets).
type PeerState struct {
	Name      string    `json:"name"`
	Up        bool      `json:"up"`
	Failures  int       `json:"failures"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Keepalive bool      `json:"keepalive"`
	// Targets are the peer's resolved targets in failover order with their
	// own state.
	Targets []observe.PeerTarget `json:"targets,omitempty"`
}

// peerSet is the health of the peers (a keepalive.Monitor: one state per
// target, OPTIONS a cloud accepts) and the addresses their requests come
// from.
type peerSet struct {
	svc *Service
	mon *keepalive.Monitor
	mu  sync.Mutex
	cfg []config.Peer // applied, in configuration order
	// everUp: peers a keepalive has found up once; before that the status
	// says "unchecked" even after a failed check.
	everUp map[string]bool
	// byIP maps the resolved addresses of peers given by name or domain to
	// the peers there, so that their requests are recognised (literal IPs
	// are in the routing table already).
	byIP atomic.Pointer[map[netip.Addr][]routing.PeerAddr]
}

func newPeerSet(s *Service) *peerSet {
	ps := &peerSet{svc: s, everUp: map[string]bool{}}
	ps.mon = keepalive.New(rtResolver{s}, ps, s.log)
	return ps
}

// rtResolver resolves with the running configuration's resolver.
type rtResolver struct{ s *Service }

func (r rtResolver) Resolve(ctx context.Context, h routing.Hop) ([]routing.Target, error) {
	rt := r.s.rt.Load()
	if rt.resolver == nil {
		return nil, errors.New("sip: not configured")
	}
	return rt.resolver.Resolve(ctx, h)
}

// Options sends one keepalive OPTIONS (keepalive.Sender) from the
// interface that reaches the target.
func (ps *peerSet) Options(ctx context.Context, req *sip.Request, t keepalive.Target) (*sip.Response, error) {
	rt := ps.svc.rt.Load()
	ep := rt.egress(t.Hop, nil)
	if ep == nil {
		return nil, errors.New("no interface reaches the peer")
	}
	info := ep.info.Load()
	tr := t.Transport
	if tr == "" {
		tr = "udp"
	}
	req.RemoveHeader("Via")
	req.PrependHeader(info.Via(tr))
	// Contact and From name the listener of the target's transport.
	if c := req.Contact(); c != nil {
		c.Address.Port = info.Port(tr)
	}
	if f := req.From(); f != nil {
		f.Address.Port = info.Port(tr)
	}
	tx, err := ep.request(ctx, req, t.Target, "")
	if err != nil {
		return nil, err
	}
	return finalResponse(ctx, tx)
}

// sourcePeer returns the peer a request from src on interface iface comes
// from, by the peers' resolved addresses, else by their address ranges.
func (ps *peerSet) sourcePeer(iface string, src netip.AddrPort) string {
	if m := ps.byIP.Load(); m != nil {
		if p := routing.PickSourcePeer((*m)[src.Addr().Unmap()], iface, src.Port()); p != "" {
			return p
		}
	}
	if g := ps.svc.deps.Guard; g != nil {
		return g.RangePeer(src.Addr().Unmap(), iface)
	}
	return ""
}

// resolveNames looks up the addresses of peers known by name (every name
// of trunk.targets and DNS overrides included), in the background after
// an apply.
func (ps *peerSet) resolveNames(rt *runtime, peers []config.Peer) {
	m := map[netip.Addr][]routing.PeerAddr{}
	for _, p := range peers {
		if rt.table == nil {
			break
		}
		for _, hop := range rt.table.PeerHops(p.Name, "") {
			if _, err := netip.ParseAddr(hop.Host); err == nil && len(p.Trunk.Targets) == 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(ps.svc.base, 5*time.Second)
			ts, err := rt.resolver.Resolve(ctx, hop)
			cancel()
			if err != nil {
				ps.svc.limited.Warn("peer-resolve:"+p.Name, "peer address not resolved", "peer", p.Name, "host", hop.Host, "err", err)
				continue
			}
			for _, t := range ts {
				a := t.Addr.Addr().Unmap()
				m[a] = append(m[a], routing.PeerAddr{Name: p.Name, Interface: p.Interface, Port: hop.Port})
			}
		}
	}
	ps.byIP.Store(&m)
}

// isUp reports whether routing may use the peer: some target of it is up
// and not kept out by a Retry-After.
func (ps *peerSet) isUp(name string) bool { return ps.mon.PeerUp(name) }

// apply starts, keeps or stops keepalives; a peer whose settings did not
// change keeps its states and its running keepalive.
func (ps *peerSet) apply(rt *runtime, peers []config.Peer) {
	var kp []keepalive.Peer
	for _, p := range peers {
		if rt.table == nil {
			break
		}
		hops := rt.table.PeerHops(p.Name, "")
		if len(hops) == 0 {
			continue
		}
		k := keepalive.Peer{Name: p.Name, Hops: hops, Interval: p.OptionsInterval.D(),
			Up: p.Trunk.Keepalive.Up, DownAfter: p.Trunk.Keepalive.DownAfter}
		pr := keepalive.Probe{MaxForwards: rt.maxForwards, UserAgent: rt.userAgent, Headers: p.Trunk.Keepalive.Headers,
			Allow: strings.Split(trunk.Allow(rt.allowed["REFER"]), ", ")}
		if ep := rt.egress(hops[0], nil); ep != nil {
			info := ep.info.Load()
			tr := hops[0].Transport
			if tr == "" {
				tr = "udp"
			}
			pr.LocalHost, pr.LocalPort = info.Host, info.Port(tr)
		}
		k.Probe = pr
		kp = append(kp, k)
	}
	ps.mu.Lock()
	ps.cfg = peers
	for n := range ps.everUp {
		if !hasPeer(peers, n) {
			delete(ps.everUp, n)
			peerUp.DeleteLabelValues(n)
		}
	}
	ps.mu.Unlock()
	ps.mon.Apply(kp)
	go ps.resolveNames(rt, peers)
}

func hasPeer(peers []config.Peer, name string) bool {
	for _, p := range peers {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (ps *peerSet) stop() { ps.mon.Close() }

// PeerStates returns every peer's state: up while some target may be
// used; a peer counts as checked only once a keepalive found it up.
func (s *Service) PeerStates() []PeerState {
	ps := s.peers
	byPeer := map[string][]keepalive.TargetState{}
	for _, st := range ps.mon.States() {
		byPeer[st.Peer] = append(byPeer[st.Peer], st)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]PeerState, 0, len(ps.cfg))
	for _, p := range ps.cfg {
		st := PeerState{Name: p.Name, Up: ps.mon.PeerUp(p.Name), Keepalive: p.OptionsInterval > 0}
		var last time.Time
		okNow := false
		for i, t := range byPeer[p.Name] {
			st.Targets = append(st.Targets, t.Status())
			if t.LastCheck.After(last) {
				last = t.LastCheck
			}
			if t.Checked && t.Failures == 0 {
				okNow = true
			}
			if i == 0 || t.Failures < st.Failures {
				st.Failures = t.Failures
			}
			if t.LastError != "" && st.LastError == "" {
				st.LastError = t.LastError
			}
		}
		if okNow {
			ps.everUp[p.Name] = true
			st.LastError = ""
		}
		if ps.everUp[p.Name] || !st.Up {
			st.LastCheck = last
		}
		v := 0.0
		if st.Up {
			v = 1
		}
		peerUp.WithLabelValues(p.Name).Set(v)
		out = append(out, st)
	}
	return out
}
