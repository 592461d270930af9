package b2bua

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/guard"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/store"
)

// mtlsPKI is testPKI with client certificates on the listeners, in one of
// three ways a provider may handle them.
type mtlsPKI struct {
	*testPKI
	roots *x509.CertPool
	mode  string // verify: crypto/tls verifies; pki: the provider verifies (like internal/pki); lax: nobody verifies
}

func (p *mtlsPKI) ServerConfig(l config.Listener) (*tls.Config, error) {
	cfg, _ := p.testPKI.ServerConfig(l)
	switch p.mode {
	case "verify":
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.roots
	case "pki":
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return p.verifyClient(cs.PeerCertificates) }
	case "lax":
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	return cfg, nil
}

func (p *mtlsPKI) verifyClient(chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("no client certificate")
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: p.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// selfVerifyingPKI is the "pki" mode with pki.ClientVerifier, as the PKI
// subsystem: only through it may the B2BUA trust names in this mode.
type selfVerifyingPKI struct{ *mtlsPKI }

func (p selfVerifyingPKI) VerifyClient(chain []*x509.Certificate) error { return p.verifyClient(chain) }

// sipOverStream sends an INVITE for user 100 over c (TLS or TCP, from the
// local address of c) and returns the first final response's status code
// (0 when none came within 10 s or the connection was closed). A non-2xx
// final response is acknowledged.
func sipOverStream(t *testing.T, c net.Conn, transport string) int {
	t.Helper()
	la := c.LocalAddr().(*net.TCPAddr)
	hp := net.JoinHostPort(la.IP.String(), strconv.Itoa(la.Port))
	branch, callID := "z9hG4bK-"+strconv.Itoa(la.Port), "ident-"+strconv.Itoa(la.Port)
	via := "Via: SIP/2.0/" + transport + " " + hp + ";branch=" + branch + ";rport\r\n"
	body := string(testSDP(la.IP.String(), 7000))
	invite := "INVITE sip:100@" + c.RemoteAddr().String() + " SIP/2.0\r\n" + via +
		"From: <sip:carrier@" + hp + ">;tag=ft1\r\nTo: <sip:100@sbc.test>\r\nCall-ID: " + callID + "\r\n" +
		"CSeq: 1 INVITE\r\nContact: <sip:carrier@" + hp + ";transport=" + strings.ToLower(transport) + ">\r\n" +
		"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, invite); err != nil {
		return 0
	}
	r := textproto.NewReader(bufio.NewReader(c))
	for {
		status, err := r.ReadLine()
		if err != nil {
			return 0
		}
		hdr, err := r.ReadMIMEHeader()
		if err != nil {
			return 0
		}
		if n, _ := strconv.Atoi(hdr.Get("Content-Length")); n > 0 {
			if _, err := io.ReadFull(r.R, make([]byte, n)); err != nil {
				return 0
			}
		}
		f := strings.Fields(status)
		if len(f) < 2 {
			return 0
		}
		code, _ := strconv.Atoi(f[1])
		if code < 200 {
			continue
		}
		if code >= 300 {
			_, _ = io.WriteString(c, "ACK sip:100@"+c.RemoteAddr().String()+" SIP/2.0\r\n"+via+
				"From: <sip:carrier@"+hp+">;tag=ft1\r\nTo: "+hdr.Get("To")+"\r\nCall-ID: "+callID+"\r\n"+
				"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
		}
		return code
	}
}

// dialFrom connects to dst from the loopback address src, over TLS with
// cert when cert is not nil, else over plain TCP.
func dialFrom(t *testing.T, src string, dst netip.AddrPort, cert *tls.Certificate) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if cert == nil {
		return raw
	}
	tc := tls.Client(raw, &tls.Config{Certificates: []tls.Certificate{*cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // the unit's test certificate
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	return tc
}

// clientCert is a key and certificate for a TLS client named dns.
func clientCert(t *testing.T, ca *pkitest.CA, dns ...string) *tls.Certificate {
	t.Helper()
	key := pkitest.NewKey(t)
	leaf := ca.Issue(t, key.Public(), pkitest.Leaf{CN: dns[0], DNS: dns})
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// A peer configured by host name is recognised by the verified client
// certificate of its TLS connection, from an address that is in no peer's
// list: its INVITE is routed as coming from that peer. The same address
// with a certificate naming no peer, with a certificate nobody verified, or
// over plain TCP, is an unknown source on the restricted outside (403).
func TestPeerByTLSCertificate(t *testing.T) {
	ca := pkitest.NewRoot(t, "Carrier Test CA", "Carrier")
	other := pkitest.NewRoot(t, "Impostor CA", "")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	carrier := clientCert(t, ca, "sip.carrier.example")
	stranger := clientCert(t, ca, "intruder.example")
	forged := clientCert(t, other, "sip.carrier.example")

	tests := []struct {
		name   string
		mode   string // provider, see mtlsPKI; "pki+" = with pki.ClientVerifier
		cert   *tls.Certificate
		plain  bool // plain TCP instead of TLS
		routed bool
	}{
		{"certificate verified by crypto/tls names the peer", "verify", carrier, false, true},
		{"certificate verified by the provider names the peer", "pki+", carrier, false, true},
		{"verified certificate of another name", "verify", stranger, false, false},
		{"certificate nobody verified", "lax", carrier, false, false},
		{"certificate of another CA nobody verified", "lax", forged, false, false},
		{"provider verified it but offers no check to the B2BUA", "pki", carrier, false, false},
		{"plain TCP from the same address", "verify", nil, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := &mtlsPKI{testPKI: newTestPKI(t), roots: roots, mode: strings.TrimSuffix(tc.mode, "+")}
			var prov pki.Provider = base
			if strings.HasSuffix(tc.mode, "+") {
				prov = selfVerifyingPKI{base}
			}
			u, pbx := identityUnit(t, prov, nil)
			checkIdentity(t, u, pbx, tc.cert, tc.plain, tc.routed)
		})
	}
}

// identityUnit is a unit with TLS and TCP listeners on the restricted
// outside, the guard, a PBX answering 486 on the inside and the peer
// "carrier" known by the name sip.carrier.example only. mut runs last.
func identityUnit(t *testing.T, prov pki.Provider, mut func(*config.Config)) (*testUnit, *peerUA) {
	t.Helper()
	pbx := newPeerUAWith(t, "pbx", "127.0.0.1", "udp", func(p *peerUA) {
		p.OnInvite = func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(486, "Busy Here", nil) }
	})
	peers := []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: pbx.Addr.String(), Transport: "udp"},
		// known by name only; the name does not resolve in the test
		{Name: "carrier", Kind: "itsp", Interface: "outside", Address: "sip.carrier.example:5061", Transport: "tls"},
	}
	gcfg := config.Default()
	gcfg.Peers = peers
	u := newTestUnitWith(t, nil, nil, Deps{TLS: prov, Guard: guard.New(gcfg, testLogger())}, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners,
			config.Listener{Interface: "outside", Transport: "tls"}, config.Listener{Interface: "outside", Transport: "tcp"})
		c.Peers = peers
		// only a request the routing layer sees as from "carrier" reaches
		// the PBX as 7100 (the default route keeps 100)
		c.DialPlan.Rules = []config.DialRule{{Name: "from-carrier", Head: "100", Source: "carrier",
			ForwardTo: []config.Forward{{Peer: "pbx", Rewrite: "7100"}}}}
		if mut != nil {
			mut(c)
		}
	})
	return u, pbx
}

// checkIdentity sends an INVITE from 127.0.0.5 over TLS with cert (plain
// TCP when plain) and checks that it reached the PBX as from "carrier"
// (routed) or was refused with 403 and reached nothing.
func checkIdentity(t *testing.T, u *testUnit, pbx *peerUA, cert *tls.Certificate, plain, routed bool) {
	t.Helper()
	transport, dst := "TLS", u.ListenAddr("outside", "tls")
	if plain {
		transport, dst, cert = "TCP", u.ListenAddr("outside", "tcp"), nil
	}
	code := sipOverStream(t, dialFrom(t, "127.0.0.5", dst, cert), transport)
	if !routed {
		if code != 403 {
			t.Fatalf("final response %d, want 403 (unknown source)", code)
		}
		select {
		case r := <-pbx.Reqs:
			t.Fatalf("the PBX got %s from a refused source", r.Method)
		default:
		}
		return
	}
	if code != 486 {
		t.Fatalf("final response %d, want the PBX's 486", code)
	}
	if inv := pbx.Next(sip.INVITE); inv.Recipient.User != "7100" {
		t.Fatalf("PBX got INVITE for %q, want 7100 (routed as from peer carrier)", inv.Recipient.User)
	}
	waitNoCalls(t, u.Service)
}

// The same with the PKI subsystem as provider, as in the product: the
// listener with require_client_cert verifies the chain against the CA
// store during the handshake, and the B2BUA trusts the names through
// pki.ClientVerifier. A certificate of a CA outside the store fails the
// handshake: the INVITE gets no answer at all.
func TestPeerByTLSCertificateWithPKI(t *testing.T) {
	ca := pkitest.NewRoot(t, "Carrier Test CA", "Carrier")
	other := pkitest.NewRoot(t, "Impostor CA", "")
	tests := []struct {
		name   string
		cert   *tls.Certificate
		plain  bool
		routed bool
	}{
		{"certificate of the peer's name", clientCert(t, ca, "other.carrier.example", "SIP.carrier.example"), false, true},
		{"certificate of another name", clientCert(t, ca, "intruder.example"), false, false},
		{"plain TCP from the same address", nil, true, false},
	}
	st := store.NewMemory()
	prov := pki.New(st, testLogger())
	t.Cleanup(func() { prov.Close() })
	withPKI := func(c *config.Config) {
		certs := &pki.Certs{Store: st}
		c.Certificates.Private = nil // "default" has no material in a bare store
		if _, err := certs.New(t.Context(), c, "sbc", pki.NewOptions{Subject: pki.Subject{CN: "sbc.test"}, SelfSigned: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := certs.ImportCA(t.Context(), c, "carrier-ca", pki.EncodeCertificatesPEM(ca.Cert)); err != nil {
			t.Fatal(err)
		}
		c.TLS.CACertificates, c.TLS.ClientCertificate = []string{"carrier-ca"}, "sbc"
		for i := range c.SIP.Listeners {
			if c.SIP.Listeners[i].Transport == "tls" {
				c.SIP.Listeners[i].Certificate, c.SIP.Listeners[i].RequireClientCert = "sbc", true
			}
		}
		if err := prov.Apply(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	u, pbx := identityUnit(t, prov, withPKI)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkIdentity(t, u, pbx, tc.cert, tc.plain, tc.routed)
		})
	}
	t.Run("certificate of a CA outside the store", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.5", u.ListenAddr("outside", "tls"), clientCert(t, other, "sip.carrier.example"))
		if code := sipOverStream(t, c, "TLS"); code != 0 {
			t.Fatalf("final response %d to a refused certificate, want none (handshake refused)", code)
		}
	})
}

// The identity of a connection is forgotten when it closes.
func TestTLSIdentityForgottenOnClose(t *testing.T) {
	ca := pkitest.NewRoot(t, "Carrier Test CA", "Carrier")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	u := newTestUnitWith(t, nil, nil, Deps{TLS: &mtlsPKI{testPKI: newTestPKI(t), roots: roots, mode: "verify"}}, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls"})
	})
	ep := u.rt.Load().endpoints["outside"]
	c := dialFrom(t, "127.0.0.6", u.ListenAddr("outside", "tls"), clientCert(t, ca, "sip.carrier.example"))
	key := c.LocalAddr().String()
	_, _ = io.WriteString(c, "\r\n\r\n") // keepalive: the unit has accepted the connection once it answers
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 2)); err != nil {
		t.Fatalf("no keepalive answer: %v", err)
	}
	names := ep.PeerNames(key)
	if strings.Join(names, ",") != "sip.carrier.example" {
		t.Fatalf("identity of %s: %v", key, names)
	}
	c.Close()
	waitFor(t, func() bool { return ep.PeerNames(key) == nil }, "identity forgotten after close")
}

// TestPeersShareAnAddress: the PBX (inside) and the trunk (outside) on one
// IP address with different ports. A call from the PBX is recognised as
// the PBX's (by interface and port) and goes to the trunk, not back to the
// PBX as if the trunk had called.
func TestPeersShareAnAddress(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	trunk := newPeerUA(t, "trunk", "127.0.0.1", "udp")
	u := newTestUnit(t, pbx, trunk, nil)
	ctx := ctxT(t)
	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("call not answered: %v", err)
	}
	_ = sess.Ack(ctx)
	if inv := trunk.Next(sip.INVITE); inv.Recipient.User != "4930123456" {
		t.Fatalf("trunk got %s", inv.Recipient.String())
	}
	if n := pbx.Wire.Count("INVITE "); n != 0 {
		t.Fatalf("the PBX got %d INVITEs: its call was taken for the trunk's", n)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	trunk.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

// TestSourcePeerByRange: a peer whose addresses are not known (a name
// that does not resolve) is recognised by its trunk.ranges on its
// interface, and only there.
func TestSourcePeerByRange(t *testing.T) {
	var cfg *config.Config
	u := newTestUnitWith(t, nil, nil, Deps{}, func(c *config.Config) {
		c.Peers = append(c.Peers, config.Peer{Name: "cloud", Kind: "itsp", Interface: "outside", Domain: "cloud.invalid", Transport: "udp",
			Trunk: config.PeerTrunk{Ranges: []string{"127.0.0.8/29"}}})
		cfg = c
	})
	u.deps.Guard = guard.New(cfg, testLogger())
	if p := u.peers.sourcePeer("outside", netip.MustParseAddrPort("127.0.0.9:5061")); p != "cloud" {
		t.Fatalf("source in the range: peer %q, want cloud", p)
	}
	if p := u.peers.sourcePeer("inside", netip.MustParseAddrPort("127.0.0.9:5061")); p != "" {
		t.Fatalf("source in the range on another interface: peer %q", p)
	}
	if p := u.peers.sourcePeer("outside", netip.MustParseAddrPort("127.0.0.17:5061")); p != "" {
		t.Fatalf("source outside the range: peer %q", p)
	}
}
