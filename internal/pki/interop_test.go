package pki

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// echoServe accepts connections from ln, reports the client certificate's
// CN on accepted (when not nil) and echoes what it reads.
func echoServe(ln net.Listener, accepted chan<- string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if accepted != nil {
			cn := ""
			if pc := c.(*tls.Conn).ConnectionState().PeerCertificates; len(pc) > 0 {
				cn = pc[0].Subject.CommonName
			}
			select {
			case accepted <- cn:
			default:
			}
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			_, _ = io.Copy(c, c) // until the peer closes
		}()
	}
}

// writePeerFiles writes a peer's key, certificate and intermediates as PEM
// files for openssl (-key, -cert, -cert_chain).
func writePeerFiles(t *testing.T, dir string, c tls.Certificate) (certFile, keyFile, chainFile string) {
	t.Helper()
	keyPEM, err := MarshalKeyPEM(c.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	var chain bytes.Buffer
	for _, d := range c.Certificate[1:] {
		certs, _ := ParseCertificates(d)
		chain.Write(EncodeCertificatesPEM(certs...))
	}
	certFile, keyFile, chainFile = filepath.Join(dir, "peer.pem"), filepath.Join(dir, "peer.key"), filepath.Join(dir, "chain.pem")
	if err := os.WriteFile(certFile, EncodeCertificatesPEM(c.Leaf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chainFile, chain.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, chainFile
}

// sClient runs openssl s_client against addr, sends "ping" and returns
// its output and whether "ping" came back. Standard input stays open until
// the echo arrives or s_client ends (bounded by a timeout), so the answer is
// not cut off by s_client quitting at end of input.
func sClient(t *testing.T, addr string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", append([]string{"s_client", "-connect", addr, "-servername", "sbc.example.com"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); pw.Close() }()
	io.WriteString(stdin, "ping\n")
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	echoed := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if sc.Text() == "ping" {
			echoed = true
			stdin.Close()
		}
		if strings.Contains(sc.Text(), "Verify return code") && slices.Contains(args, "-ign_eof") {
			cmd.Process.Kill()
		}
	}
	stdin.Close()
	return out.String(), echoed
}

// TestOpenSSLClient: openssl s_client against a listener built from the
// Provider: TLS 1.1 refused by default, mutual TLS works, a client without
// certificate is refused with the right diagnosis.
func TestOpenSSLClient(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("install Debian package openssl")
	}
	u := newUnit(t)
	ln, addr := u.listen(t)
	accepted := make(chan string, 1)
	go echoServe(ln, accepted)
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root.pem")
	os.WriteFile(rootFile, EncodeCertificatesPEM(u.h.root.Cert), 0o600)
	certFile, keyFile, chainFile := writePeerFiles(t, dir, peerCert(t, u.h.inter, pkitest.Leaf{CN: "pbx.example.com"}, u.h.inter.Cert))

	mutual := []string{"-cert", certFile, "-key", keyFile, "-cert_chain", chainFile, "-CAfile", rootFile, "-verify_return_error", "-verify_hostname", "sbc.example.com"}
	t.Run("mutual TLS 1.2", func(t *testing.T) {
		out, echoed := sClient(t, addr, append([]string{"-tls1_2"}, mutual...)...)
		if !echoed || !strings.Contains(out, "Verify return code: 0 (ok)") {
			t.Errorf("no verified echo:\n%s", out)
		}
		if cn := <-accepted; cn != "pbx.example.com" {
			t.Errorf("accepted client %q", cn)
		}
	})
	t.Run("mutual TLS 1.3", func(t *testing.T) {
		// s_client does not print the echo under TLS 1.3 here; what counts is
		// that both sides verified each other.
		out, _ := sClient(t, addr, append([]string{"-tls1_3", "-ign_eof"}, mutual...)...)
		if !strings.Contains(out, "Verify return code: 0 (ok)") || strings.Contains(out, "alert") {
			t.Errorf("handshake not verified:\n%s", out)
		}
		if cn := <-accepted; cn != "pbx.example.com" {
			t.Errorf("accepted client %q", cn)
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		before := failures(CauseProtocol)
		out, echoed := sClient(t, addr, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-cert", certFile, "-key", keyFile, "-cert_chain", chainFile)
		if echoed || !strings.Contains(out, "alert protocol version") {
			t.Errorf("TLS 1.1 accepted:\n%s", out)
		}
		if failures(CauseProtocol) != before+1 {
			t.Errorf("protocol_mismatch not counted:\n%s", out)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		before := failures(CauseNoClientCert)
		out, echoed := sClient(t, addr, "-CAfile", rootFile)
		if echoed {
			t.Errorf("accepted without client certificate:\n%s", out)
		}
		if failures(CauseNoClientCert) != before+1 {
			t.Errorf("no_client_certificate not counted:\n%s", out)
		}
	})
}

// TestTestssl: testssl.sh finds no protocol below TLS 1.2 and no weak
// cipher category on a listener in the default configuration.
func TestTestssl(t *testing.T) {
	if testing.Short() {
		t.Skip("testssl is slow; skipped with -short")
	}
	if _, err := exec.LookPath("testssl"); err != nil {
		t.Skip("install Debian package testssl.sh")
	}
	u := newUnit(t)
	u.cfg.SIP.Listeners[2].RequireClientCert = false // testssl has no client certificate
	if err := u.s.Apply(u.ctx, u.cfg); err != nil {
		t.Fatal(err)
	}
	ln, addr := u.listen(t)
	go echoServe(ln, nil)
	jf := filepath.Join(t.TempDir(), "out.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "testssl", "--protocols", "--std", "--quiet", "--color", "0", "--warnings", "batch",
		"--sneaky", "--jsonfile", jf, addr)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("testssl did not finish: %v\n%s", err, out)
	}
	raw, rerr := os.ReadFile(jf)
	if rerr != nil {
		t.Fatalf("no testssl JSON (%v): %s", rerr, out)
	}
	var findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Finding  string `json:"finding"`
	}
	if err := json.Unmarshal(raw, &findings); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range findings {
		got[f.ID] = f.Finding
	}
	for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1", "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
		"cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"} {
		if f, ok := got[id]; !ok || !strings.HasPrefix(f, "not offered") {
			t.Errorf("%s: %q, want not offered", id, f)
		}
	}
	for _, id := range []string{"TLS1_2", "TLS1_3"} {
		if f := got[id]; !strings.HasPrefix(f, "offered") {
			t.Errorf("%s: %q, want offered", id, f)
		}
	}
	if t.Failed() {
		t.Logf("testssl output:\n%s\nJSON ids: %v", out, got)
	}
}
