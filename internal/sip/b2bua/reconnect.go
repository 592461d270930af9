package b2bua

import (
	"context"
	"slices"
	"sync"

	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// A unit that carries calls on from another unit (adopt.go, rehome.go)
// has none of the TCP and TLS connections their legs used: they ended
// with the unit that had them. Reconnect opens them again towards the
// configured peers (trunks, PBXs), so that the requests of those legs go
// out on a connection made with this unit's certificate, and a peer that
// answers or sends over the connection it has finds one. Phones are not
// reconnected: one behind NAT cannot be reached anyway until it opens a
// new connection itself (docs/ha.md).

var reconnects = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "palisade", Subsystem: "sip", Name: "reconnects_total",
	Help: "TCP/TLS connections opened towards peers for calls carried on from another unit, by result (ok, failed).",
}, []string{"result"})

// Reconnection is one connection Reconnect opened (or failed to).
type Reconnection struct {
	Interface string `json:"interface"`
	Transport string `json:"transport"`
	Target    string `json:"target"`
	Peer      string `json:"peer"`
	Legs      int    `json:"legs"`
	Err       string `json:"error,omitempty"`
}

// Reconnect opens one connection per distinct target of the TCP/TLS legs
// towards configured peers of the calls ids, all at once, each bounded by
// the handshake timeout; a leg whose connection opened sends its requests
// over it from now on. It returns what it did.
func (s *Service) Reconnect(ctx context.Context, ids []string) []Reconnection {
	type group struct {
		ep   *endpoint
		tg   routing.Target
		legs []*leg
		r    Reconnection
	}
	groups := map[string]*group{}
	var order []string
	for _, c := range s.calls.all() {
		if !slices.Contains(ids, c.st.ID) || c.ended.Load() {
			continue
		}
		for _, l := range [2]*leg{c.legAt(0), c.legAt(1)} {
			d, ep := l.snapshot()
			if d.Transport == "udp" || d.Peer == "" {
				continue
			}
			tg := l.target()
			if tg.ServerName == "" {
				tg.ServerName = s.peerServerName(ctx, d.Peer, tg)
			}
			key := ep.name + " " + tg.Transport + " " + tg.Addr.String()
			g := groups[key]
			if g == nil {
				g = &group{ep: ep, tg: tg, r: Reconnection{Interface: ep.name, Transport: tg.Transport, Target: tg.Addr.String(), Peer: d.Peer}}
				groups[key] = g
				order = append(order, key)
			}
			g.legs = append(g.legs, l)
		}
	}
	var wg sync.WaitGroup
	for _, k := range order {
		g := groups[k]
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.r.Legs = len(g.legs)
			if err := g.ep.Connect(ctx, g.tg); err != nil {
				g.r.Err = err.Error()
				reconnects.WithLabelValues("failed").Inc()
				s.log.Warn("ha: connection towards a peer of adopted calls not opened", "interface", g.r.Interface,
					"peer", g.r.Peer, "transport", g.tg.Transport, "target", g.r.Target, "legs", g.r.Legs, "err", err)
				return
			}
			reconnects.WithLabelValues("ok").Inc()
			for _, l := range g.legs {
				l.reconnected(g.tg)
			}
			s.log.Info("ha: connection towards a peer of adopted calls opened", "interface", g.r.Interface,
				"peer", g.r.Peer, "transport", g.tg.Transport, "target", g.r.Target, "legs", g.r.Legs)
		}()
	}
	wg.Wait()
	out := make([]Reconnection, 0, len(order))
	for _, k := range order {
		out = append(out, groups[k].r)
	}
	return out
}

// peerServerName is the TLS server name of peer when tg is where the
// peer's configuration leads (a leg the peer set up has none recorded).
func (s *Service) peerServerName(ctx context.Context, peer string, tg routing.Target) string {
	_, _, ptg, err := s.peerTarget(ctx, peer)
	if err != nil || ptg.Addr != tg.Addr {
		return ""
	}
	return ptg.ServerName
}

// reconnected makes the leg's requests go over the connection to tg,
// unless a request of the peer came over another one meanwhile.
func (l *leg) reconnected(tg routing.Target) {
	c := l.owner
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.ep.HasConn(l.Transport, l.Flow) {
		return
	}
	l.Flow = tg.Addr.String()
	if l.ServerName == "" {
		l.ServerName = tg.ServerName
	}
}
