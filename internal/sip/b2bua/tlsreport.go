package b2bua

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
)

// reportHandshake passes a failed TLS handshake to Deps.Handshakes (the PKI:
// cause, bounded log, counter); without one it is logged here at a bounded
// rate. role is "server" for a
// peer connecting to our listener, "client" for a connection we dialled.
func (s *Service) reportHandshake(role, iface, remote string, err error) {
	badInput.WithLabelValues("tls_handshake").Inc()
	if hr := s.deps.Handshakes; hr != nil {
		d := hr.HandshakeFailed(role, iface, remote, err)
		s.limited.Warn("tls-handshake-"+role, "TLS handshake failed", "role", role, "interface", iface,
			"remote", remote, "cause", string(d.Cause), "diagnosis", d.Message, "err", err)
		return
	}
	s.limited.Warn("tls-handshake-"+role, "TLS handshake failed", "role", role, "interface", iface, "remote", remote, "err", err)
}

// refusedConn watches the first read of a connection we dialled: in TLS 1.3
// the server checks our certificate after our Finished, so a refusal
// arrives as an alert on the first read, after HandshakeContext returned
// nil. That is a handshake failure too and is reported as one.
type refusedConn struct {
	net.Conn
	once   sync.Once
	report func(error)
}

func (c *refusedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(func() {}) // the peer accepted us: nothing to watch any more
	} else if err != nil && isTLSAlert(err) {
		c.once.Do(func() { c.report(err) })
	}
	return n, err
}

// isTLSAlert reports whether err is an alert sent by the peer.
func isTLSAlert(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return false
	}
	var ae tls.AlertError
	return errors.As(err, &ae) || strings.Contains(err.Error(), "remote error: tls:")
}
