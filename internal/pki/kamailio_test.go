package pki

import (
	"bufio"
	"context"
	"crypto"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
)

// Kamailio (kamailio-tls-modules) stands in for a cloud service's SBC: it
// requires a client certificate and verifies it against its CA list. The
// unit connects with its client configuration (client certificate, CA
// store, name check) and sends an OPTIONS over the TLS connection.

const kamailioCfg = pkitest.KamailioGlobals + `disable_tcp=no
enable_tls=yes
listen=tls:127.0.0.1:%d
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tls.so"
loadmodule "sl.so"
modparam("tls", "config", "%s")
request_route {
	sl_send_reply("200", "OK from kamailio");
	exit;
}
`

// startKamailio runs kamailio with a TLS listener whose certificate is
// issued by ca for name, trusting clients from trust; it returns the address.
func startKamailio(t *testing.T, u *unitFixture, ca *pkitest.CA, name string, trust *pkitest.CA) string {
	t.Helper()
	pkitest.SkipWithoutKamailio(t)
	dir := t.TempDir()
	key := pkitest.NewKey(t)
	cert := ca.Issue(t, key.Public(), pkitest.Leaf{CN: name})
	keyPEM, _ := MarshalKeyPEM(key.(crypto.Signer))
	write := func(n string, b []byte) string {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chain := EncodeCertificatesPEM(cert)
	if ca != u.h.root && ca != u.h.other {
		chain = EncodeCertificatesPEM(cert, ca.Cert)
	}
	tlsCfg := write("tls.cfg", fmt.Appendf(nil, pkitest.KamailioTLSServer, write("key.pem", keyPEM), write("cert.pem", chain),
		write("ca.pem", EncodeCertificatesPEM(trust.Cert))))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := write("kamailio.cfg", fmt.Appendf(nil, kamailioCfg, port, tlsCfg))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	pkitest.StartKamailio(t, dir, cfg, addr)
	return addr
}

// optionsOverTLS sends an OPTIONS over a connection made by the unit's Dial
// and returns the status line of the answer.
func optionsOverTLS(t *testing.T, u *unitFixture, addr, serverName string) (string, error) {
	t.Helper()
	c, err := u.s.Dial(context.Background(), "tcp", addr, serverName)
	if err != nil {
		return "", err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	req := "OPTIONS sip:" + serverName + " SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS " + local + ";branch=z9hG4bK-pki-test\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:sbc.example.com>;tag=1\r\nTo: <sip:" + serverName + ">\r\n" +
		"Call-ID: pki-test@" + local + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestKamailioMutualTLS(t *testing.T) {
	u := newUnit(t)
	// Kamailio's certificate comes from our root; it trusts our root for clients.
	addr := startKamailio(t, u, u.h.root, "kamailio.example.com", u.h.root)

	t.Run("accepted", func(t *testing.T) {
		line, err := optionsOverTLS(t, u, addr, "kamailio.example.com")
		if err != nil || line != "SIP/2.0 200 OK from kamailio" {
			t.Fatalf("answer %q, err %v", line, err)
		}
	})
	t.Run("wrong FQDN", func(t *testing.T) {
		_, err := optionsOverTLS(t, u, addr, "sip.other.example.com")
		var he *HandshakeError
		if !asHandshake(err, &he) || he.Cause != CauseNameMismatch || !strings.Contains(he.Message, "kamailio.example.com") {
			t.Fatalf("err %v, want name_mismatch naming kamailio.example.com", err)
		}
	})
	t.Run("CA store without Kamailio's CA", func(t *testing.T) {
		saved := u.cfg.Certificates.CA
		u.cfg.Certificates.CA = nil
		u.apply(t)
		defer func() { u.cfg.Certificates.CA = saved; u.apply(t) }()
		rep, err := u.s.DiagnoseTLS(context.Background(), addr, "kamailio.example.com")
		if err != nil || rep.OK || rep.Diagnosis.Cause != CauseUnknownCA || len(rep.PeerChain) == 0 {
			t.Fatalf("report %+v err %v", rep, err)
		}
	})
	t.Run("our certificate from a CA Kamailio does not trust", func(t *testing.T) {
		saved := u.cfg.TLS.ClientCertificate
		u.ownCert(t, "other", u.h.other, "sbc.example.com")
		u.cfg.TLS.ClientCertificate = "other"
		u.apply(t)
		defer func() { u.cfg.TLS.ClientCertificate = saved; u.apply(t) }()
		rep, err := u.s.DiagnoseTLS(context.Background(), addr, "kamailio.example.com")
		if err != nil || rep.OK || rep.Diagnosis.Side != "local" || rep.Diagnosis.Cause != CauseUnknownCA || !strings.Contains(rep.Diagnosis.Message, "Other Org Root CA") {
			t.Fatalf("report %+v err %v", rep.Diagnosis, err)
		}
		if _, err := optionsOverTLS(t, u, addr, "kamailio.example.com"); err == nil {
			t.Error("OPTIONS answered although Kamailio refused our certificate")
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		saved := u.cfg.TLS.ClientCertificate
		u.cfg.TLS.ClientCertificate = ""
		u.apply(t)
		defer func() { u.cfg.TLS.ClientCertificate = saved; u.apply(t) }()
		rep, err := u.s.DiagnoseTLS(context.Background(), addr, "kamailio.example.com")
		if err != nil || rep.OK || rep.Diagnosis.Cause != CauseNoClientCert {
			t.Fatalf("report %+v err %v", rep.Diagnosis, err)
		}
	})
}

func (u *unitFixture) apply(t *testing.T) {
	t.Helper()
	if err := u.s.Apply(u.ctx, u.cfg); err != nil {
		t.Fatal(err)
	}
}

func asHandshake(err error, he **HandshakeError) bool {
	h, ok := err.(*HandshakeError)
	if ok {
		*he = h
	}
	return ok
}
