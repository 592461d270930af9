package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The generator's sockets are made with socket(2) and read through its own
// epoll sets, like the relay's: 2,000 sockets in Go's poller would wake a
// goroutine per packet, and the generator shares the two cores with the
// relay it measures.

type rawSock struct {
	fd   int
	port int
	to   unix.Sockaddr
}

func newRawSock() (*rawSock, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &rawSock{fd: fd, port: sa.(*unix.SockaddrInet4).Port}, nil
}

func (r *rawSock) send(b []byte) error { return unix.Sendto(r.fd, b, unix.MSG_DONTWAIT, r.to) }

// receivers reads every stream's socket with n epoll loops until stop is
// closed, calling got(stream, packet) for each datagram.
func receivers(streams []*stream, n int, stop chan struct{}, got func(s *stream, b []byte)) (wait func(), err error) {
	var wg sync.WaitGroup
	for g := 0; g < n; g++ {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return nil, err
		}
		unix.SetNonblock(ep, true)
		// The epoll descriptor waits in Go's poller: a receiver blocked in
		// epoll_wait(2) would hold a P away from the senders.
		epf := os.NewFile(uintptr(ep), "gen-epoll")
		rc, err := epf.SyscallConn()
		if err != nil {
			return nil, err
		}
		byFD := map[int32]*stream{}
		for i := g; i < len(streams); i += n {
			s := streams[i]
			byFD[int32(s.sock.fd)] = s
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, s.sock.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.sock.fd)}); err != nil {
				return nil, fmt.Errorf("epoll: %w", err)
			}
		}
		wg.Add(1)
		go func() {
			<-stop
			epf.Close()
		}()
		go func() {
			defer wg.Done()
			evs := make([]unix.EpollEvent, 256)
			buf := make([]byte, 2048)
			k := 0
			poll := func(uintptr) bool {
				k, _ = unix.EpollWait(ep, evs, 0)
				return k > 0
			}
			for {
				if err := rc.Read(poll); err != nil {
					return
				}
				for _, ev := range evs[:k] {
					s := byFD[ev.Fd]
					for {
						m, _, err := unix.Recvfrom(s.sock.fd, buf, unix.MSG_DONTWAIT)
						if err != nil || m <= 0 {
							break
						}
						got(s, buf[:m])
					}
				}
			}
		}()
	}
	return wg.Wait, nil
}

// latencyUs is the time since the sender's stamp in the RTP timestamp field.
func latencyUs(start time.Time, b []byte) float64 {
	return float64(uint32(time.Since(start).Microseconds()) - binary.BigEndian.Uint32(b[4:8]))
}
