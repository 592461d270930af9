package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Files the admin subsystem keeps in the data directory.
const (
	SocketFile = "admin.sock" // the API for local tools; mode 0600
	AddrFile   = "admin.addr" // the address the HTTPS listener bound (host:port)
	CertFile   = "admin.crt"  // the HTTPS listener's certificate (PEM), for --ca
)

// Server is the admin subsystem: the HTTPS listener on admin.listen and the
// local socket, both serving the same Handler.
type Server struct {
	h       *Handler
	log     *slog.Logger
	dataDir string
	listen  string            // replaces admin.listen when set
	certs   CertificateSource // nil: the generated certificate only

	generated tls.Certificate
	cert      atomic.Pointer[tls.Certificate]
	// certName is admin.certificate: each handshake takes its current
	// certificate from Certs, so a renewal (ACME) reaches the admin
	// listener without an apply; cert is the fallback.
	certName atomic.Pointer[string]

	mu     sync.Mutex
	addr   string // admin.listen the current listener was opened for
	https  *http.Server
	bound  net.Addr
	sock   *http.Server
	closed bool
}

// CertificateSource looks up a private certificate by name (the PKI
// subsystem, applied before the admin listener).
type CertificateSource interface {
	Certificate(name string) (*tls.Certificate, error)
}

// ServerOptions is what the admin listener is built with.
type ServerOptions struct {
	DataDir string
	// Generated is the HTTPS certificate used while admin.certificate is "".
	Generated tls.Certificate
	// Certs gives the private certificate named by admin.certificate; nil
	// means the generated certificate is always used.
	Certs CertificateSource
	// Listen, when set, replaces admin.listen (palisade run --admin-listen;
	// tests bind 127.0.0.1:0).
	Listen string
	Log    *slog.Logger
}

// NewServer returns the admin subsystem serving h.
func NewServer(h *Handler, o ServerOptions) *Server {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{h: h, log: o.Log, dataDir: o.DataDir, listen: o.Listen, certs: o.Certs, generated: o.Generated}
	s.cert.Store(&s.generated)
	return s
}

// certificateFor returns the HTTPS certificate cfg asks for.
func (s *Server) certificateFor(cfg *config.Config) (*tls.Certificate, error) {
	name := cfg.Admin.Certificate
	if name == "" || s.certs == nil {
		return &s.generated, nil
	}
	c, err := s.certs.Certificate(name)
	if err != nil {
		return nil, fmt.Errorf("admin.certificate %q: %w", name, err)
	}
	return c, nil
}

// Addr is the address the HTTPS listener is bound to (nil before Apply).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound
}

// Name implements unit.Subsystem.
func (s *Server) Name() string { return "admin" }

func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: 10 * time.Second, // slowloris
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Apply opens a listener on the new admin.listen beside the old one and
// swaps when it is bound; the old listener then finishes its requests and
// closes. Access list, password and session settings change at once.
func (s *Server) Apply(ctx context.Context, cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("admin listener is closed")
	}
	cert, err := s.certificateFor(cfg)
	if err != nil {
		return err
	}
	addr := cfg.Admin.Listen
	if s.listen != "" {
		addr = s.listen
	}
	if s.https == nil || addr != s.addr {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("admin listener on %s: %w", addr, err)
		}
		srv := s.newHTTPServer()
		tcfg := &tls.Config{
			MinVersion: tls.VersionTLS12,
			// TLS 1.2 with forward secrecy and AEAD only (TLS 1.3 suites are fixed).
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			},
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				if n := s.certName.Load(); n != nil && *n != "" && s.certs != nil {
					if c, err := s.certs.Certificate(*n); err == nil {
						return c, nil
					}
				}
				return s.cert.Load(), nil
			},
		}
		go func() {
			if err := srv.Serve(tls.NewListener(ln, tcfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("admin listener stopped", "err", err)
			}
		}()
		old := s.https
		s.https, s.addr, s.bound = srv, addr, ln.Addr()
		if old != nil {
			go shutdown(old)
		}
		if err := writeFileAtomic(filepath.Join(s.dataDir, AddrFile), []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			s.log.Warn("could not write admin.addr", "err", err)
		}
		s.log.Info("admin API listening", "url", "https://"+ln.Addr().String()+"/api/v1/")
	}
	s.cert.Store(cert) // new handshakes only; open connections keep theirs
	s.certName.Store(&cfg.Admin.Certificate)
	s.h.env.Auth.SetAdmin(cfg.Admin)
	return nil
}

// OpenSocket serves the handler on DATA/admin.sock, usable by the owner
// only. The unit calls it once it has started, so a socket that answers
// means a unit that runs.
func (s *Server) OpenSocket() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.sock != nil {
		return errors.New("admin socket: already open or closed")
	}
	path := filepath.Join(s.dataDir, SocketFile)
	if len(path) > 107 { // sun_path holds 108 bytes with the NUL
		return fmt.Errorf("admin socket: the path %s is longer than the 107 bytes a unix socket allows; use a shorter --data", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("another unit is running on this data directory (%s answers)", path)
	}
	_ = os.Remove(path) // stale socket of a unit that died
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("admin socket: %w", err)
	}
	srv := s.newHTTPServer()
	srv.Handler = withProfiling(srv.Handler)
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return WithLocal(ctx, peerUID(c))
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin socket stopped", "err", err)
		}
	}()
	s.sock = srv
	return nil
}

// peerUID is the uid of the process on the other end of a unix socket, -1
// when the kernel does not say.
func peerUID(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	uid := -1
	_ = raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			uid = int(cred.Uid)
		}
	})
	return uid
}

func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
}

// Drain keeps the admin surfaces up: administrators watch a draining unit
// through them. They close with Close.
func (s *Server) Drain(ctx context.Context) error { return nil }

// Close stops both listeners and removes admin.sock and admin.addr.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{s.https, s.sock} {
		if srv != nil {
			wg.Go(func() { shutdown(srv) })
		}
	}
	wg.Wait()
	if s.sock != nil {
		_ = os.Remove(filepath.Join(s.dataDir, SocketFile))
	}
	_ = os.Remove(filepath.Join(s.dataDir, AddrFile))
	return nil
}

// writeFileAtomic writes data to path through a temporary file and rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
