package b2bua

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

// endpoint is one interface: the sipgo adaptation (transport.Endpoint,
// serving all listeners of the interface) and what the B2BUA keeps per
// interface. It lives as long as the service, across applies, so that
// connections of calls in progress survive.
type endpoint struct {
	*transport.Endpoint
	name string
	svc  *Service

	info atomic.Pointer[ifaceInfo]

	certIdx atomic.Pointer[certPeerIndex] // identity.go
}

// ifaceInfo is what messages on this interface show about the unit: the
// host and ports of its Via and Contact (transport.Local builds them).
type ifaceInfo struct {
	transport.Local
	addr      netip.Addr
	userAgent string
	hide      bool // sip.topology_hiding
}

func newEndpoint(svc *Service, name string) *endpoint {
	e := &endpoint{name: name, svc: svc}
	e.info.Store(&ifaceInfo{Local: transport.Local{Ports: map[string]int{}}})
	report := func(remote string, err error) { svc.reportHandshake("client", name, remote, err) }
	h := transport.Hooks{
		Logger:          slog.New(&sipgoLogHandler{svc: svc}),
		OnRequest:       func(req *sip.Request, tx *sip.ServerTx) { svc.onRequest(e, req, tx) },
		OnStrayResponse: func(r *sip.Response) { svc.onStrayResponse(e, r) },
		OnAnswer:        e.lateAnswer, // dialog.go: a 2xx for an INVITE given up
		Sent: func(callID string, m sip.Message, to netip.AddrPort) {
			svc.trace(callID, e, observe.Sent, m, to)
		},
		KeepRaw: svc.tracing,
		Local: func() (netip.Addr, int) {
			i := e.info.Load()
			return i.addr, i.Ports["udp"]
		},
		HandshakeTimeout: func() time.Duration { return svc.rt.Load().handshakeTimeout },
		DialedTLS: func(c net.Conn, remote string) net.Conn {
			return &refusedConn{Conn: c, report: func(err error) { report(remote, err) }}
		},
		HandshakeFailed: report,
		ServerHandshakeFailed: func(remote string, err error) {
			svc.reportHandshake("server", name, remote, err)
		},
		VerifiedNames: func(cs tls.ConnectionState, remote net.Addr) []string {
			names := svc.verifiedNames(cs, remote)
			if names != nil {
				svc.log.Debug("TLS client certificate verified", "interface", name, "names", names)
			}
			return names
		},
	}
	if svc.deps.TLS != nil {
		h.TLSClient = svc.deps.TLS.ClientConfig
	}
	e.Endpoint = transport.New(name, h)
	return e
}

// request starts a client transaction for req towards dst.
func (e *endpoint) request(ctx context.Context, req *sip.Request, dst routing.Target, callID string) (*sip.ClientTx, error) {
	return e.Request(ctx, req, dst, callID)
}

// send writes a message without a transaction (ACK for 2xx).
func (e *endpoint) send(req *sip.Request, dst routing.Target, callID string) error {
	return e.Send(req, dst, callID)
}

// watch and ordered give an INVITE transaction's responses in wire order
// (transport/order.go).
func (e *endpoint) watch(req *sip.Request) *transport.Ordered   { return e.Watch(req) }
func (e *endpoint) ordered(tx *sip.ClientTx) *transport.Ordered { return e.OrderedOf(tx) }
