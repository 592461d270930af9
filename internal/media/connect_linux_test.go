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
		if a, ok := sa.(*unix.SockaddrInet4); ok && err == nil {
			got = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
		}
	})
	if got != want {
		t.Fatalf("relay socket :%d connected to %v, want %v", s.port, got, want)
	}
}
