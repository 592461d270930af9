package guard

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestListenerLimitsAndTimeouts(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listener(inner, 2*time.Second, time.Hour)
	defer l.Close()
	accepted := make(chan net.Conn, MaxConnsPerSource+10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range MaxConnsPerSource + 5 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	// The connections over the per-source limit are closed by the unit:
	// a read on them ends with EOF (or a reset).
	closed := 0
	for _, c := range clients[MaxConnsPerSource:] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				closed++
			}
		}
	}
	if closed != 5 {
		t.Fatalf("%d of the 5 connections over the limit were closed", closed)
	}
	// Of the first two accepted: client 1 talks at once and is read
	// normally, client 0 stays silent and its first read times out.
	clients[1].Write([]byte("OPTIONS"))
	byAddr := map[string]net.Conn{}
	for range 2 {
		c := <-accepted
		byAddr[c.RemoteAddr().String()] = c
	}
	c2, silent := byAddr[clients[1].LocalAddr().String()], byAddr[clients[0].LocalAddr().String()]
	if c2 == nil || silent == nil {
		t.Fatal("the first two clients were not the first accepted")
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c2, buf[:7]); err != nil {
		t.Fatalf("talking connection: %v", err)
	}
	if _, err := silent.Read(buf); err == nil {
		t.Fatal("silent connection read without error")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("silent connection: %v, want a timeout", err)
	}
	silent.Close()
	// Closing frees the source's slots: one more connection is accepted.
	c2.Close()
	n, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after slots were freed")
	}
}
