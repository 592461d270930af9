package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/palisade-sbc/palisade/internal/config"
)

// errNotApplied answers handshakes before the first Apply.
var errNotApplied = errors.New("pki: no configuration applied yet")

// tls12Suites are the TLS 1.2 cipher suites offered: forward secrecy and
// AEAD only. TLS 1.3 suites are always the three standard ones.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// legacySuites are added only when TLS 1.0/1.1 are explicitly enabled: those
// versions have no AEAD suite.
var legacySuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

func (rt *runtime) suites() []uint16 {
	if rt.minV < tls.VersionTLS12 {
		return append(slices.Clone(tls12Suites), legacySuites...)
	}
	return tls12Suites
}

func (rt *runtime) versions() string {
	return versionName(rt.minV) + "-" + versionName(rt.maxV)
}

func versionName(v uint16) string {
	for n, x := range tlsVersions {
		if x == v {
			return n
		}
	}
	return fmt.Sprintf("0x%04x", v)
}

// ServerConfig returns the config for the TLS listener l. The listener is
// identified by interface, transport and port: on every handshake its
// current settings (certificate, require_client_cert) and the current CA
// store are looked up, so an apply changes new handshakes only.
func (s *Subsystem) ServerConfig(l config.Listener) (*tls.Config, error) {
	if rt := s.rt.Load(); rt != nil {
		if cur, ok := rt.listeners[keyOf(l)]; ok {
			l = cur
		}
		if _, ok := rt.own[l.Certificate]; !ok {
			return nil, fmt.Errorf("the listener %s tls:%d has no usable certificate %q", l.Interface, l.Port, l.Certificate)
		}
	}
	key, fallback := keyOf(l), l
	return &tls.Config{
		MinVersion: tls.VersionTLS12, // replaced per handshake
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return s.serverConfigFor(key, fallback, hello)
		},
	}, nil
}

func (s *Subsystem) serverConfigFor(key listenerKey, fallback config.Listener, hello *tls.ClientHelloInfo) (*tls.Config, error) {
	rt := s.rt.Load()
	if rt == nil {
		return nil, errNotApplied
	}
	l, ok := rt.listeners[key]
	if !ok {
		l = fallback
	}
	remote := ""
	if hello.Conn != nil {
		remote = hello.Conn.RemoteAddr().String()
	}
	own := rt.own[l.Certificate]
	if own == nil {
		d := Diagnosis{Cause: CauseNoCertificate, Side: "local", Message: fmt.Sprintf("the listener %s tls:%d has no usable certificate %q", l.Interface, l.Port, l.Certificate)}
		s.count(d, "server", remote)
		return nil, &VerifyError{d}
	}
	if d, bad := rt.checkHello(hello); bad {
		s.count(d, "server", remote)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{own.cert},
		MinVersion:   rt.minV,
		MaxVersion:   rt.maxV,
		CipherSuites: rt.suites(),
	}
	if l.RequireClientCert {
		// The unit checks presence and chain itself (same rules as
		// RequireAndVerifyClientCert, plus CRLs) so that every refusal carries
		// its §7.1.6 cause and is counted here, whoever runs the handshake.
		// No CA names are advertised: a peer then sends its certificate even
		// when its CA is not ours, and the refusal can name that CA instead
		// of reporting a missing certificate.
		cfg.ClientAuth = tls.RequestClientCert
		now := s.now()
		var from netip.Addr
		if ap, err := netip.ParseAddrPort(remote); err == nil {
			from = ap.Addr()
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if ve := rt.verifyClient(cs.PeerCertificates, from, now); ve != nil {
				s.count(ve.Diagnosis, "server", remote)
				return ve
			}
			handshakes.WithLabelValues("server", "ok").Inc()
			return nil
		}
	} else {
		// Called once the client has accepted the unit's certificate (it
		// answers after checking it), so a success is counted here.
		cfg.VerifyConnection = func(tls.ConnectionState) error {
			handshakes.WithLabelValues("server", "ok").Inc()
			return nil
		}
	}
	return cfg, nil
}

// checkHello spots a version or cipher mismatch from the ClientHello, which
// the handshake itself reports without the details.
func (rt *runtime) checkHello(hello *tls.ClientHelloInfo) (Diagnosis, bool) {
	vers := hello.SupportedVersions
	common := false
	for _, v := range vers {
		if v >= rt.minV && v <= rt.maxV {
			common = true
		}
	}
	if !common {
		var offered []string
		for _, v := range vers {
			if n := versionName(v); !strings.HasPrefix(n, "0x") {
				offered = append(offered, n)
			}
		}
		return Diagnosis{Cause: CauseProtocol, Side: "peer", Message: fmt.Sprintf("the peer offered TLS %s, but this unit accepts TLS %s (tls.min_version/tls.max_version); upgrade the peer, or enable the old version only if it cannot be upgraded",
			strings.Join(offered, ", "), rt.versions())}, true
	}
	if slices.Contains(vers, tls.VersionTLS13) && rt.maxV >= tls.VersionTLS13 {
		return Diagnosis{}, false
	}
	for _, c := range hello.CipherSuites {
		if slices.Contains(rt.suites(), c) {
			return Diagnosis{}, false
		}
	}
	return Diagnosis{Cause: CauseCipher, Side: "peer", Message: "the peer offered no cipher suite this unit accepts (TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305); upgrade the peer's TLS settings"}, true
}

// ClientConfig returns the config for an outgoing connection to a target
// whose SIP domain or FQDN is serverName. The server's chain is verified
// against the CA store (and the system roots only with tls.use_system_roots);
// with tls.check_server_domain its name must match serverName — a target
// given by IP address gets no name check. The unit's client certificate is
// tls.client_certificate.
func (s *Subsystem) ClientConfig(serverName string) (*tls.Config, error) {
	rt := s.rt.Load()
	if rt == nil {
		return nil, errNotApplied
	}
	return s.clientConfig(rt, serverName, "", nil), nil
}

// clientConfig builds the client config over rt. seen, when set, receives
// the certificates the server sent (for the diagnosis tool).
func (s *Subsystem) clientConfig(rt *runtime, serverName, remote string, seen *[]*x509.Certificate) *tls.Config {
	checkName := ""
	if rt.tls.CheckServerDomain && serverName != "" && !isIP(serverName) {
		checkName = serverName
	}
	pt := rt.peers.forServer(serverName)
	trust, usages := rt.peers.store(pt, rt.trust, peerIsServer)
	cfg := &tls.Config{
		MinVersion:   rt.minV,
		MaxVersion:   rt.maxV,
		CipherSuites: rt.suites(),
		// The unit verifies the server itself in VerifyConnection (CA store,
		// CRLs, RFC 6125 names with the wildcard setting).
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if own := rt.own[rt.tls.ClientCertificate]; own != nil {
				return &own.cert, nil
			}
			return &tls.Certificate{}, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if seen != nil {
				*seen = cs.PeerCertificates
			}
			now := s.now()
			if _, ve := trust.verifyUsages(cs.PeerCertificates, peerIsServer, checkName, rt.tls.AllowWildcardServerCertificates, now, usages); ve != nil {
				if pt == nil && len(cs.PeerCertificates) > 0 {
					ve = rt.hint(ve, cs.PeerCertificates[0], peerIsServer, now)
				}
				s.count(ve.Diagnosis, "client", remote)
				return ve
			}
			handshakes.WithLabelValues("client", "ok").Inc()
			return nil
		},
	}
	if serverName != "" && !isIP(serverName) {
		cfg.ServerName = serverName
	}
	return cfg
}

// HandshakeFailed explains, logs (at a bounded rate) and counts a failed
// handshake that the caller ran itself. role is "server" (a peer connected
// to a listener on iface) or "client"; remote is the peer's address.
// Failures the unit's own checks already counted are only explained.
func (s *Subsystem) HandshakeFailed(role, iface, remote string, err error) Diagnosis {
	rt := s.rt.Load()
	var own *ownView
	if rt != nil {
		own = rt.ownView(role, iface)
	}
	d := Classify(err, own, s.now())
	var ve *VerifyError
	if errors.As(err, &ve) {
		return d // counted where it was raised
	}
	if role == "server" && (d.Cause == CauseProtocol || d.Cause == CauseCipher) {
		return d // counted from the ClientHello
	}
	s.count(d, role, remote)
	return d
}

// ownView is what the unit presents in role on iface.
func (rt *runtime) ownView(role, iface string) *ownView {
	v := &ownView{versions: rt.versions(), fqdn: rt.fqdn[iface]}
	name := rt.tls.ClientCertificate
	if role == "server" {
		for _, l := range rt.listeners {
			if l.Interface == iface && l.Transport == "tls" {
				name = l.Certificate
				break
			}
		}
	}
	if oc := rt.own[name]; oc != nil {
		v.name, v.chain, v.status, v.sentCert = name, oc.chain, oc.status, true
	}
	return v
}

func (s *Subsystem) count(d Diagnosis, role, remote string) {
	handshakeFailures.WithLabelValues(string(d.Cause)).Inc()
	side := "client"
	if role == "server" {
		side = "server"
	}
	handshakes.WithLabelValues(side, "failed").Inc()
	s.lastMu.Lock()
	s.last = d
	s.lastMu.Unlock()
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h // one budget per peer address, whatever its source port
	}
	s.limited.Warn("tls:"+string(d.Cause)+":"+host, "TLS handshake failed", "role", role, "remote", remote, "cause", string(d.Cause), "diagnosis", d.Message)
}

// Certificate returns the named private certificate of the running
// configuration, ready for a tls.Config (e.g. for the admin listener).
func (s *Subsystem) Certificate(name string) (*tls.Certificate, error) {
	rt := s.rt.Load()
	if rt == nil {
		return nil, errNotApplied
	}
	oc := rt.own[name]
	if oc == nil {
		return nil, fmt.Errorf("no usable private certificate %q", name)
	}
	c := oc.cert
	return &c, nil
}
