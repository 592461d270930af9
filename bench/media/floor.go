package main

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel floor under the relay's per-packet figure: what this machine
// charges for one 172-byte UDP datagram sent and received on loopback with
// plain system calls, no relay, no wake-ups (the reader drains in bursts).
// The relay needs one receive and one send per packet, so its CPU per
// packet can approach this but not go under it. Measured in every run
// (the machine's load changes it) as the thread's CPU time per datagram.

// floorSockets opens a sender and a receiver on 127.0.0.1; connected
// connect(2)s the sender to the receiver (the relay after latching).
func floorSockets(connected bool) (s, r int, to *unix.SockaddrInet4, err error) {
	open := func() (int, int, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, 0, err
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			unix.Close(fd)
			return -1, 0, err
		}
		sa, _ := unix.Getsockname(fd)
		return fd, sa.(*unix.SockaddrInet4).Port, nil
	}
	if s, _, err = open(); err != nil {
		return
	}
	var port int
	if r, port, err = open(); err != nil {
		unix.Close(s)
		return
	}
	to = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}
	if connected {
		if err = unix.Connect(s, to); err != nil {
			unix.Close(s)
			unix.Close(r)
		}
	}
	return
}

// floorLoop sends n datagrams from s to r and reads them back in bursts of 64.
func floorLoop(s, r int, to *unix.SockaddrInet4, connected bool, n int) error {
	pkt := make([]byte, 172)
	buf := make([]byte, 2048)
	for i := 0; i < n; i++ {
		var err error
		if connected {
			_, err = unix.Write(s, pkt)
		} else {
			err = unix.Sendto(s, pkt, 0, to)
		}
		if err != nil {
			return err
		}
		if i%64 == 63 || i == n-1 {
			for {
				if _, _, err := unix.Recvfrom(r, buf, unix.MSG_DONTWAIT); err != nil {
					break
				}
			}
		}
	}
	return nil
}

// loopbackFloorUs is the CPU µs per datagram (send + receive, connected
// sender) of 200,000 datagrams on this thread, pinned to cpu when >= 0.
func loopbackFloorUs(cpu int) (float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cpu >= 0 {
		var set, old unix.CPUSet
		unix.SchedGetaffinity(0, &old)
		set.Set(cpu)
		unix.SchedSetaffinity(0, &set)
		defer unix.SchedSetaffinity(0, &old)
	}
	s, r, to, err := floorSockets(true)
	if err != nil {
		return 0, err
	}
	defer unix.Close(s)
	defer unix.Close(r)
	const n = 200000
	var r0, r1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &r0)
	if err := floorLoop(s, r, to, true, n); err != nil {
		return 0, err
	}
	unix.Getrusage(unix.RUSAGE_THREAD, &r1)
	cpu0 := time.Duration(unix.TimevalToNsec(r0.Utime) + unix.TimevalToNsec(r0.Stime))
	cpu1 := time.Duration(unix.TimevalToNsec(r1.Utime) + unix.TimevalToNsec(r1.Stime))
	return float64((cpu1 - cpu0).Nanoseconds()) / 1000 / n, nil
}
