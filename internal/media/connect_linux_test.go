//go:build linux

package media

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// checkPeer asserts the address relay socket s is connect(2)ed to
// (want invalid: not connected).
func checkPeer(t *testing.T, s *socket, want netip.AddrPort) {
	t.Helper()
	var got netip.AddrPort
	s.wk.wait(func() { // the worker owns the descriptor
		sa, err := unix.Getpeername(s.u.fd)
		if err != nil {
			return // ENOTCONN
		}
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			got = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
		case *unix.SockaddrInet6:
			got = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
		}
	})
	if got != want {
		t.Fatalf("relay socket :%d connected to %v, want %v", s.port, got, want)
	}
}
