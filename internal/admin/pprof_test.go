package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

// newTestServer is an admin server on a memory store with its data
// directory, and a pool trusting its certificate.
func newTestServer(t *testing.T) (*Server, store.Store, string, *x509.CertPool) {
	t.Helper()
	st := store.NewMemory()
	dir := t.TempDir()
	cert, certPEM, err := LoadOrCreateCertificate(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	env := &Env{Store: st, Config: newFakeManager(config.Default(), &recordingApplier{}), Log: slog.New(slog.DiscardHandler)}
	srv := NewServer(NewHandler(env), ServerOptions{DataDir: dir, Generated: cert, Log: env.Log})
	t.Cleanup(func() { srv.Close() })
	return srv, st, dir, pool
}

// The runtime profiles are served on admin.sock and nowhere else.
func TestProfilesOnlyOnAdminSocket(t *testing.T) {
	srv, _, dir, pool := newTestServer(t)
	cfg := config.Default()
	addr := freeAddr(t)
	cfg.Admin.Listen = addr
	if err := srv.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := srv.OpenSocket(); err != nil {
		t.Fatal(err)
	}
	get := func(c *http.Client, url string) (int, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sock := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(dir, SocketFile))
	}}}
	self := filepath.Base(os.Args[0])
	if code, body := get(sock, "http://unit/debug/pprof/cmdline"); code != http.StatusOK || !strings.Contains(body, self) {
		t.Fatalf("cmdline over admin.sock: %d %q, want 200 with %q", code, body, self)
	}
	if code, body := get(sock, "http://unit/api/v1/whoami"); code != http.StatusOK || !strings.Contains(body, "local:") {
		t.Fatalf("the API over admin.sock after the profiles were added: %d %s", code, body)
	}
	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	if code, body := get(https, "https://"+addr+"/debug/pprof/cmdline"); code == http.StatusOK || strings.Contains(body, self) {
		t.Fatalf("profiles on the HTTPS listener: %d %q", code, body)
	}
}
