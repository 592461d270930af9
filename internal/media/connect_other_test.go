//go:build !linux

package media

import (
	"net/netip"
	"testing"
)

// checkPeer: relay sockets are never connected on this platform.
func checkPeer(*testing.T, *socket, netip.AddrPort) {}
