package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkLoopbackFloor is what this machine's kernel charges for one UDP
// datagram sent and received on loopback with plain system calls, no relay,
// no wake-ups (the reader drains in bursts): the floor under the relay's
// per-packet figure, which needs one receive and one send per packet.
// "sendto" gives the address with every datagram (the relay before it
// latches); "connected" sends on a socket connect(2)ed to the receiver (the
// relay after latching).
func BenchmarkLoopbackFloor(b *testing.B) {
	for _, connected := range []bool{false, true} {
		name := "sendto"
		if connected {
			name = "connected"
		}
		b.Run(name, func(b *testing.B) { loopbackFloor(b, connected) })
	}
}

func loopbackFloor(b *testing.B, connected bool) {
	open := func() (int, int) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			b.Fatal(err)
		}
		sa, _ := unix.Getsockname(fd)
		return fd, sa.(*unix.SockaddrInet4).Port
	}
	s, _ := open()
	r, port := open()
	defer unix.Close(s)
	defer unix.Close(r)
	to := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}
	if connected {
		if err := unix.Connect(s, to); err != nil {
			b.Fatal(err)
		}
	}
	pkt := make([]byte, 172)
	buf := make([]byte, 2048)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if connected {
			_, err = unix.Write(s, pkt)
		} else {
			err = unix.Sendto(s, pkt, 0, to)
		}
		if err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 || i == b.N-1 {
			for {
				if _, _, err := unix.Recvfrom(r, buf, unix.MSG_DONTWAIT); err != nil {
					break
				}
			}
		}
	}
}
