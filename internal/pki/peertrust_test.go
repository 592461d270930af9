package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
)

// publicRoots makes a "public" root that only the (replaced) system store
// holds, like a public CA in Debian's ca-certificates.
func publicRoots(t *testing.T) *pkitest.CA {
	t.Helper()
	pub := pkitest.NewRoot(t, "Public Test Root G2", "Public Test CA")
	old := systemRoots
	systemRoots = func() (*x509.CertPool, error) {
		p := x509.NewCertPool()
		p.AddCert(pub.Cert)
		return p, nil
	}
	t.Cleanup(func() { systemRoots = old })
	return pub
}

func setTeamsPeer(u *unitFixture, tr config.PeerTrust, ranges ...string) {
	u.cfg.Peers = []config.Peer{
		{Name: "teams", Kind: "itsp", Interface: "outside", Domain: "sip.pstnhub.example", Transport: "tls",
			Trunk: config.PeerTrunk{Targets: []string{"sip2.pstnhub.example:5061"}, Ranges: ranges, Trust: tr}},
		{Name: "other", Kind: "itsp", Interface: "outside", Domain: "trunk.other.example", Transport: "tls"},
	}
}

// TestServerAuthOnlyClientCert: over real handshakes with the listener
// requiring client certificates, a certificate with serverAuth only is
// accepted from the peer that allows it (by its name, from its ranges),
// and refused otherwise, with a diagnosis naming the setting.
func TestServerAuthOnlyClientCert(t *testing.T) {
	u := newUnit(t)
	h := u.h
	ln, addr := u.listen(t)
	go acceptEach(ln, func(c net.Conn) {
		var b [16]byte
		n, _ := c.Read(b[:])
		c.Write(b[:n])
	})
	serverOnly := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	teams := peerCert(t, h.inter, pkitest.Leaf{CN: "sip.pstnhub.example", DNS: []string{"*.pstnhub.example"}, EKU: serverOnly}, h.inter.Cert)
	stranger := peerCert(t, h.inter, pkitest.Leaf{CN: "trunk.other.example", EKU: serverOnly}, h.inter.Cert)

	for _, tc := range []struct {
		name   string
		trust  config.PeerTrust
		ranges []string
		cert   tls.Certificate
		ok     bool
		text   string
	}{
		{"allowed by name (wildcard of the peer's domain)", config.PeerTrust{ServerAuthClientCert: true}, nil, teams, true, ""},
		{"allowed, from the peer's range", config.PeerTrust{ServerAuthClientCert: true}, []string{"127.0.0.0/8"}, teams, true, ""},
		{"allowed name but outside its ranges", config.PeerTrust{ServerAuthClientCert: true}, []string{"52.112.0.0/14"}, teams, false, "clientAuth"},
		{"setting off: refused with the hint", config.PeerTrust{}, nil, teams, false, "server_auth_client_cert"},
		{"another peer's name is not widened", config.PeerTrust{ServerAuthClientCert: true}, nil, stranger, false, "server_auth_client_cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setTeamsPeer(u, tc.trust, tc.ranges...)
			if err := u.s.Apply(u.ctx, u.cfg); err != nil {
				t.Fatal(err)
			}
			_, err := dialAsPeer(t, addr, &tc.cert, nil)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v (%v)", err, lastDiagnosis(u.s))
				}
				if verr := u.s.VerifyClientFrom([]*x509.Certificate{tc.cert.Leaf, h.inter.Cert}, netipMust("127.0.0.1")); verr != nil {
					t.Fatalf("VerifyClientFrom: %v", verr)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if d := lastDiagnosis(u.s); d.Cause != CauseWrongUsage || !strings.Contains(d.Message, tc.text) {
				t.Fatalf("diagnosis %v, want wrong_usage with %q", d, tc.text)
			}
		})
	}
}

// TestPeerSystemRoots: a peer with trust.system_roots is verified against
// the system's public roots too, as server (the unit dials it) and as
// client; other peers are not, and their refusal names the setting.
func TestPeerSystemRoots(t *testing.T) {
	pub := publicRoots(t)
	u := newUnit(t)
	roots := x509.NewCertPool()
	roots.AddCert(u.h.root.Cert)
	teamsSrv := peerServer(t, peerCert(t, pub, pkitest.Leaf{CN: "sip2.pstnhub.example"}), roots)
	otherSrv := peerServer(t, peerCert(t, pub, pkitest.Leaf{CN: "trunk.other.example"}), roots)
	setTeamsPeer(u, config.PeerTrust{SystemRoots: true})
	u.cfg.TLS.CheckServerDomain = true
	if err := u.s.Apply(u.ctx, u.cfg); err != nil {
		t.Fatal(err)
	}
	c, err := u.s.Dial(context.Background(), "tcp", teamsSrv, "sip2.pstnhub.example")
	if err != nil {
		t.Fatalf("a public root for the peer with system_roots refused: %v", err)
	}
	var b [5]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || string(b[:]) != "hello" {
		t.Fatalf("read %q %v", b, err)
	}
	c.Close()
	_, err = u.s.Dial(context.Background(), "tcp", otherSrv, "trunk.other.example")
	var he *HandshakeError
	if !errors.As(err, &he) || he.Cause != CauseUnknownCA || !strings.Contains(he.Message, "trust.system_roots") {
		t.Fatalf("other peer: %v, want unknown_ca naming trust.system_roots", err)
	}

	// palisade diagnose tls says what the peer's settings do.
	rep, err := u.s.DiagnoseTLS(context.Background(), teamsSrv, "sip2.pstnhub.example")
	if err != nil || !rep.OK || !strings.Contains(rep.PeerTrust, `peer "teams"`) || !strings.Contains(rep.PeerTrust, "public roots are trusted") {
		t.Fatalf("diagnose: %+v %v", rep, err)
	}
	rep, err = u.s.DiagnoseTLS(context.Background(), otherSrv, "trunk.other.example")
	if err != nil || rep.OK || rep.PeerTrust != "" || rep.Diagnosis == nil || !strings.Contains(rep.Diagnosis.Message, "trust.system_roots") {
		t.Fatalf("diagnose other: %+v %v", rep, err)
	}

	// As client: Teams connecting with a public certificate naming it.
	ln, addr := u.listen(t)
	go acceptEach(ln, func(c net.Conn) {
		var b [16]byte
		n, _ := c.Read(b[:])
		c.Write(b[:n])
	})
	if _, err := dialAsPeer(t, addr, ptr(peerCert(t, pub, pkitest.Leaf{CN: "sip.pstnhub.example"})), nil); err != nil {
		t.Fatalf("public client certificate of the peer refused: %v (%v)", err, lastDiagnosis(u.s))
	}
	if _, err := dialAsPeer(t, addr, ptr(peerCert(t, pub, pkitest.Leaf{CN: "trunk.other.example"})), nil); err == nil {
		t.Fatal("public client certificate of a peer without system_roots accepted")
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
