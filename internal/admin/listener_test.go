package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func poolOf(certPEM []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(certPEM)
	return p
}

// get fetches /api/v1/whoami over HTTPS trusting only the unit's certificate.
func httpsGet(pool *x509.CertPool, addr string) (int, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	resp, err := c.Get("https://" + addr + "/api/v1/whoami")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestListenerSwapOnApply: a new admin.listen opens beside the old one and
// takes over; a listen address that cannot be bound fails the apply and the
// current listener keeps serving. The certificate stays the same across
// restarts (it lives in the store).
func TestListenerSwapOnApply(t *testing.T) {
	srv, st, dir, pool := newTestServer(t)
	_, certPEM, _ := LoadOrCreateCertificate(t.Context(), st)
	if _, again, _ := LoadOrCreateCertificate(t.Context(), st); string(again) != string(certPEM) || !pool.Equal(poolOf(certPEM)) {
		t.Fatal("the admin certificate changed between two loads")
	}

	cfg := config.Default()
	first := freeAddr(t)
	cfg.Admin.Listen = first
	if err := srv.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := srv.OpenSocket(); err != nil {
		t.Fatal(err)
	}
	if code, err := httpsGet(pool, first); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("first listener: %d %v", code, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, SocketFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.sock: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, AddrFile)); strings.TrimSpace(string(b)) != first {
		t.Fatalf("admin.addr says %q, want %s", b, first)
	}

	// Over admin.sock no password is needed; the author is the peer's uid.
	sc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(dir, SocketFile))
	}}}
	resp, err := sc.Get("http://palisade/api/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`"local:%d"`, os.Getuid()); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		t.Fatalf("whoami over admin.sock: %d %s, want %s", resp.StatusCode, body, want)
	}

	second := freeAddr(t)
	cfg2 := config.Default()
	cfg2.Admin.Listen = second
	if err := srv.Apply(t.Context(), cfg2); err != nil {
		t.Fatal(err)
	}
	if code, err := httpsGet(pool, second); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("second listener: %d %v", code, err)
	}
	// The old listener closes once its requests are done.
	for {
		if _, err := httpsGet(pool, first); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg3 := config.Default()
	cfg3.Admin.Listen = busy.Addr().String()
	if err := srv.Apply(t.Context(), cfg3); err == nil {
		t.Fatal("apply with a busy admin.listen succeeded")
	}
	if code, err := httpsGet(pool, second); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("after a failed apply the listener must still serve: %d %v", code, err)
	}
	srv.Close()
	if _, err := os.Stat(filepath.Join(dir, SocketFile)); !os.IsNotExist(err) {
		t.Fatalf("admin.sock left behind after Close: %v", err)
	}
}

type fakeCerts map[string]*tls.Certificate

func (f fakeCerts) Certificate(name string) (*tls.Certificate, error) {
	if c := f[name]; c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("no usable private certificate %q", name)
}

// servedSubject is the CN of the certificate the listener at addr presents.
func servedSubject(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestAdminCertificateFromPKI: admin.certificate switches the HTTPS
// certificate on apply; an unknown name fails the apply and changes nothing.
func TestAdminCertificateFromPKI(t *testing.T) {
	st := store.NewMemory()
	gen, _, err := LoadOrCreateCertificate(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := selfSigned("admin.example", []string{"admin.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	own, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Store: st, Config: newFakeManager(config.Default(), &recordingApplier{}), Log: slog.New(slog.DiscardHandler)}
	srv := NewServer(NewHandler(env), ServerOptions{DataDir: t.TempDir(), Generated: gen, Certs: fakeCerts{"own": &own}, Log: env.Log})
	t.Cleanup(func() { srv.Close() })

	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	if err := srv.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	if cn := servedSubject(t, addr); cn != "palisade admin" {
		t.Fatalf("generated certificate expected, got CN %q", cn)
	}
	cfg.Admin.Certificate = "own"
	if err := srv.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if cn := servedSubject(t, addr); cn != "admin.example" {
		t.Fatalf("after apply CN %q, want admin.example", cn)
	}
	cfg.Admin.Certificate = "missing"
	if err := srv.Apply(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("apply with an unknown certificate: %v", err)
	}
	if cn := servedSubject(t, addr); cn != "admin.example" {
		t.Fatalf("a failed apply changed the certificate to CN %q", cn)
	}
}
