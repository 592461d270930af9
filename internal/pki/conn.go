package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// defaultHandshakeTimeout applies when tls.handshake_timeout is not set.
const defaultHandshakeTimeout = 10 * time.Second

func (rt *runtime) handshakeTimeout() time.Duration {
	if rt != nil && rt.tls.HandshakeTimeout > 0 {
		return rt.tls.HandshakeTimeout.D()
	}
	return defaultHandshakeTimeout
}

// Listen wraps inner (a TCP listener of the TLS listener l) so that Accept
// returns only connections whose handshake succeeded. Handshakes run
// concurrently, each bounded by tls.handshake_timeout (a peer that never
// sends a hello is dropped); every failure is explained, logged at a bounded
// rate and counted.
func (s *Subsystem) Listen(inner net.Listener, l config.Listener) (net.Listener, error) {
	cfg, err := s.ServerConfig(l)
	if err != nil {
		return nil, err
	}
	tl := &tlsListener{Listener: inner, s: s, cfg: cfg, iface: l.Interface, conns: make(chan *tls.Conn), done: make(chan struct{})}
	go tl.acceptLoop()
	return tl, nil
}

type tlsListener struct {
	net.Listener
	s     *Subsystem
	cfg   *tls.Config
	iface string
	conns chan *tls.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error // why the accept loop ended, when not closed by Close
}

func (tl *tlsListener) acceptLoop() {
	for {
		c, err := tl.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			tl.mu.Lock()
			tl.err = err
			tl.mu.Unlock()
			tl.Close()
			return
		}
		go tl.handshake(c)
	}
}

func (tl *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, tl.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), tl.s.rt.Load().handshakeTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		tl.s.HandshakeFailed("server", tl.iface, c.RemoteAddr().String(), err)
		c.Close()
		return
	}
	select {
	case tl.conns <- tc:
	case <-tl.done:
		tc.Close()
	}
}

// Accept returns the next connection with a completed handshake.
func (tl *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-tl.conns:
		return c, nil
	case <-tl.done:
		tl.mu.Lock()
		defer tl.mu.Unlock()
		if tl.err != nil && !errors.Is(tl.err, net.ErrClosed) {
			return nil, tl.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting; established connections stay open.
func (tl *tlsListener) Close() error {
	var err error
	tl.once.Do(func() {
		close(tl.done)
		err = tl.Listener.Close()
	})
	return err
}

// Dial connects to address over TLS as the unit does for outgoing SIP:
// serverName is the target's SIP domain or FQDN (the name checked), the
// handshake is bounded by tls.handshake_timeout, and a failure comes back
// explained (as a *HandshakeError) and is logged and counted.
func (s *Subsystem) Dial(ctx context.Context, network, address, serverName string) (*tls.Conn, error) {
	rt := s.rt.Load()
	if rt == nil {
		return nil, errNotApplied
	}
	ctx, cancel := context.WithTimeout(ctx, rt.handshakeTimeout())
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, s.clientConfig(rt, serverName, address, nil))
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		diag := s.HandshakeFailed("client", "", address, err)
		return nil, &HandshakeError{Diagnosis: diag, Err: err}
	}
	return tc, nil
}

// HandshakeError is a failed handshake with its diagnosis.
type HandshakeError struct {
	Diagnosis
	Err error
}

func (e *HandshakeError) Error() string { return "TLS handshake failed: " + e.Message }
func (e *HandshakeError) Unwrap() error { return e.Err }

// TLSReport is what 'palisade diagnose tls' prints.
type TLSReport struct {
	Address           string     `json:"address"`
	ServerName        string     `json:"server_name,omitempty"`
	NameChecked       bool       `json:"name_checked"`
	ClientCertificate string     `json:"client_certificate,omitempty"`
	OK                bool       `json:"ok"`
	Version           string     `json:"version,omitempty"`
	CipherSuite       string     `json:"cipher_suite,omitempty"`
	Diagnosis         *Diagnosis `json:"diagnosis,omitempty"`
	// PeerTrust says how the settings of the peer known by ServerName widen
	// trust (peers[].trunk.trust); "" when they do not.
	PeerTrust string     `json:"peer_trust,omitempty"`
	PeerChain []CertInfo `json:"peer_chain,omitempty"`
}

// DiagnoseTLS connects to address the way the unit connects to a TLS peer
// (its client certificate, CA store, CRLs, name and wildcard settings) and
// reports the outcome with the peer's chain. sni is the name to send and
// check ("" = the host part of address when it is a name). After the
// handshake it waits briefly for the peer's verdict on the unit's client
// certificate, which TLS 1.3 delivers only after the handshake.
func (s *Subsystem) DiagnoseTLS(ctx context.Context, address, sni string) (*TLSReport, error) {
	rt := s.rt.Load()
	if rt == nil {
		return nil, errNotApplied
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, inputErrorf("%q is not HOST:PORT", address)
	}
	if sni == "" && !isIP(host) {
		sni = host
	}
	rep := &TLSReport{Address: address, ServerName: sni, NameChecked: rt.tls.CheckServerDomain && sni != ""}
	rep.PeerTrust = rt.peerTrustNote(sni)
	if rt.own[rt.tls.ClientCertificate] != nil {
		rep.ClientCertificate = rt.tls.ClientCertificate
	}
	ctx, cancel := context.WithTimeout(ctx, rt.handshakeTimeout())
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		diag := Classify(err, nil, s.now())
		rep.Diagnosis = &diag
		return rep, nil
	}
	defer raw.Close()
	var seen []*x509.Certificate
	tc := tls.Client(raw, s.clientConfig(rt, sni, address, &seen))
	err = tc.HandshakeContext(ctx)
	if err == nil {
		// The peer may still refuse our certificate (TLS 1.3 sends that
		// verdict after the handshake); a SIP server otherwise stays silent.
		_ = tc.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		var b [1]byte
		// Only an alert counts: a timeout, data or a plain close mean the
		// peer accepted the handshake.
		if _, rerr := tc.Read(b[:]); rerr != nil && strings.Contains(rerr.Error(), "remote error") {
			err = rerr
		}
	}
	now := s.now()
	for _, c := range seen {
		rep.PeerChain = append(rep.PeerChain, Describe(c, now))
	}
	if err != nil {
		diag := s.HandshakeFailed("client", "", address, err)
		rep.Diagnosis = &diag
		return rep, nil
	}
	cs := tc.ConnectionState()
	rep.OK = true
	rep.Version = tls.VersionName(cs.Version)
	rep.CipherSuite = tls.CipherSuiteName(cs.CipherSuite)
	return rep, nil
}

// BuildForDiagnosis prepares s from cfg without the checks Apply makes, so
// that 'palisade diagnose tls' works on a stopped unit's data directory even
// when some certificate is still pending.
func (s *Subsystem) BuildForDiagnosis(ctx context.Context, cfg *config.Config) error {
	rt, err := s.build(ctx, cfg, false)
	if err != nil {
		return err
	}
	s.rt.Store(rt)
	return nil
}
