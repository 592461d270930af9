package b2bua

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// downAfter is how many keepalives in a row must fail before a peer is
// marked down.
const downAfter = 3

// PeerState is a peer's keepalive state (for `palisade status peers`).
type PeerState struct {
	Name      string    `json:"name"`
	Up        bool      `json:"up"`
	Failures  int       `json:"failures"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Keepalive bool      `json:"keepalive"`
}

type peerSet struct {
	svc *Service
	mu  sync.Mutex
	m   map[string]*peerRun
	// byIP maps the resolved addresses of peers given by name or domain to
	// the peers there, so that their requests are recognised (literal IPs
	// are in the routing table already).
	byIP atomic.Pointer[map[netip.Addr][]routing.PeerAddr]
}

// sourcePeer returns the peer a request from src on interface iface comes
// from, by the peers' resolved addresses.
func (ps *peerSet) sourcePeer(iface string, src netip.AddrPort) string {
	if m := ps.byIP.Load(); m != nil {
		return routing.PickSourcePeer((*m)[src.Addr().Unmap()], iface, src.Port())
	}
	return ""
}

// resolveNames looks up the addresses of peers known by name, in the
// background after an apply.
func (ps *peerSet) resolveNames(peers []config.Peer) {
	rt := ps.svc.rt.Load()
	m := map[netip.Addr][]routing.PeerAddr{}
	for _, p := range peers {
		hop, ok := peerHop(rt, p)
		if !ok {
			continue
		}
		if _, err := netip.ParseAddr(hop.Host); err == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(ps.svc.base, 5*time.Second)
		ts, err := rt.resolver.Resolve(ctx, hop)
		cancel()
		if err != nil {
			ps.svc.limited.Warn("peer-resolve:"+p.Name, "peer address not resolved", "peer", p.Name, "err", err)
			continue
		}
		for _, t := range ts {
			a := t.Addr.Addr().Unmap()
			m[a] = append(m[a], routing.PeerAddr{Name: p.Name, Interface: p.Interface, Port: hop.Port})
		}
	}
	ps.byIP.Store(&m)
}

type peerRun struct {
	cfg  config.Peer
	st   PeerState
	stop chan struct{}
}

func newPeerSet(s *Service) *peerSet { return &peerSet{svc: s, m: map[string]*peerRun{}} }

// isUp reports whether routing may use the peer.
func (ps *peerSet) isUp(name string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.m[name]
	return p == nil || p.st.Up
}

// apply starts, keeps or stops keepalives; a peer whose settings did not
// change keeps its state and its running keepalive.
func (ps *peerSet) apply(peers []config.Peer) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range peers {
		seen[p.Name] = true
		old := ps.m[p.Name]
		if old != nil && samePeer(old.cfg, p) {
			continue
		}
		if old != nil {
			close(old.stop)
		}
		r := &peerRun{cfg: p, st: PeerState{Name: p.Name, Up: true, Keepalive: p.OptionsInterval > 0}, stop: make(chan struct{})}
		ps.m[p.Name] = r
		peerUp.WithLabelValues(p.Name).Set(1)
		if p.OptionsInterval > 0 {
			go ps.keepalive(r)
		}
	}
	for n, r := range ps.m {
		if !seen[n] {
			close(r.stop)
			delete(ps.m, n)
			peerUp.DeleteLabelValues(n)
		}
	}
	go ps.resolveNames(peers)
}

func samePeer(a, b config.Peer) bool {
	return a.Address == b.Address && a.Domain == b.Domain && a.Transport == b.Transport &&
		a.Interface == b.Interface && a.OptionsInterval == b.OptionsInterval
}

func (ps *peerSet) stop() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for n, r := range ps.m {
		close(r.stop)
		delete(ps.m, n)
	}
}

// States returns every peer's state.
func (s *Service) PeerStates() []PeerState {
	ps := s.peers
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []PeerState
	for _, r := range ps.m {
		out = append(out, r.st)
	}
	return out
}

func (ps *peerSet) keepalive(r *peerRun) {
	t := time.NewTicker(r.cfg.OptionsInterval.D())
	defer t.Stop()
	for {
		err := ps.ping(r.cfg)
		ps.mu.Lock()
		r.st.LastCheck = time.Now()
		if err == nil {
			if !r.st.Up {
				ps.svc.log.Info("peer is up again", "peer", r.cfg.Name)
			}
			r.st.Up, r.st.Failures, r.st.LastError = true, 0, ""
			peerUp.WithLabelValues(r.cfg.Name).Set(1)
		} else {
			r.st.Failures++
			r.st.LastError = err.Error()
			if r.st.Failures >= downAfter && r.st.Up {
				r.st.Up = false
				peerUp.WithLabelValues(r.cfg.Name).Set(0)
				ps.svc.log.Warn("peer marked down", "peer", r.cfg.Name, "failures", r.st.Failures, "err", err)
			}
		}
		ps.mu.Unlock()
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// ping sends one OPTIONS to the peer. Any response but 408/503 counts as
// alive: the peer's SIP stack answered.
func (ps *peerSet) ping(p config.Peer) error {
	s := ps.svc
	rt := s.rt.Load()
	hop, _ := peerHop(rt, p)
	ctx, cancel := context.WithTimeout(ps.svc.base, 5*time.Second)
	defer cancel()
	targets, err := rt.resolver.Resolve(ctx, hop)
	if err != nil {
		return err
	}
	ep := rt.egress(hop, nil)
	if ep == nil {
		return errStatus(503, "no interface")
	}
	info := ep.info.Load()
	tg := targets[0]
	leg := &Leg{Transport: tg.Transport, CallID: newID(), LocalTag: newID(),
		LocalURI:  sip.Uri{Scheme: "sip", User: "palisade", Host: info.host},
		RemoteURI: hopURI(hop), RemoteTarget: hopURI(hop)}
	req := newRequest(sip.OPTIONS, leg, info, 70, 1)
	if rt.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", rt.userAgent))
	}
	req.SetBody(nil)
	tx, err := ep.request(ctx, req, tg, "")
	if err != nil {
		return err
	}
	res := waitFinal(tx)
	if res == nil {
		return errStatus(408, "no answer to OPTIONS")
	}
	if res.StatusCode == 408 || res.StatusCode == 503 {
		return errStatus(res.StatusCode, res.Reason)
	}
	return nil
}

func peerHop(rt *runtime, p config.Peer) (routing.Hop, bool) {
	if rt.table == nil {
		return routing.Hop{}, false
	}
	return rt.table.PeerHop(p.Name)
}
