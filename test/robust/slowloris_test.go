package robust_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/guard"
)

// slowConn is one slowloris connection and when the unit closed it.
type slowConn struct {
	kind   string
	c      net.Conn
	closed chan time.Duration // time from connect to close by the unit
}

// watch reads until the unit closes the connection (or the test's bound),
// trickling a byte every period if trickle is set.
func watch(kind string, c net.Conn, trickle time.Duration, bound time.Duration) *slowConn {
	s := &slowConn{kind: kind, c: c, closed: make(chan time.Duration, 1)}
	start := time.Now()
	stop := make(chan struct{})
	if trickle > 0 {
		go func() {
			msg := "GET / HTTP/1.1\r\nHost: x\r\nX-a: "
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(trickle):
				}
				if _, err := c.Write([]byte{msg[i%len(msg)]}); err != nil {
					return
				}
			}
		}()
	}
	go func() {
		defer close(stop)
		c.SetReadDeadline(time.Now().Add(bound))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			s.closed <- -1 // still open at the bound
			return
		}
		s.closed <- time.Since(start)
	}()
	return s
}

func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowloris opens 200 connections that send nothing or trickle bytes
// to the SIP TCP and TLS listeners and to the admin HTTPS listener. While
// they are open a call and an admin login work; the unit closes them within
// its timeouts (SIP: first byte / TLS handshake 3 s, admin: request header
// 10 s), and connections over the per-source limit at once.
func TestSlowloris(t *testing.T) {
	u := startUnit(t, func(c *config.Config) { c.TLS.HandshakeTimeout = config.Duration(3 * time.Second) })
	fdsBefore := u.openFDs(t)
	const bound = 30 * time.Second
	var conns []*slowConn
	for range guard.MaxConnsPerSource + 6 { // 70: 6 over the per-source limit
		conns = append(conns, watch("sip-tcp", dialFrom(t, slowlorisI, u.insideTCP), 0, bound))
	}
	for range 60 {
		conns = append(conns, watch("sip-tls", dialFrom(t, slowlorisI, u.outTLS), 0, bound))
	}
	for i := range 70 {
		trickle := time.Duration(0)
		if i%2 == 1 {
			trickle = 2 * time.Second
		}
		conns = append(conns, watch("admin", dialFrom(t, slowlorisI, u.admin), trickle, bound))
	}

	// Meanwhile: a call and an admin login.
	c := startCall(t, u)
	if st, ok := c.hangUp(t); st != 200 || !ok {
		t.Fatalf("call during slowloris: BYE %d, trunk got BYE %v", st, ok)
	}
	pw, err := os.ReadFile(filepath.Join(u.dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := cl.Post("https://"+u.admin+"/api/v1/login", "application/json", strings.NewReader(`{"password":"`+strings.TrimSpace(string(pw))+`"}`))
	if err != nil {
		t.Fatalf("login during slowloris: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("login during slowloris: %s", res.Status)
	}

	// Every slow connection is closed by the unit within its timeout.
	limits := map[string]time.Duration{"sip-tcp": 3 * time.Second, "sip-tls": 3 * time.Second, "admin": 10 * time.Second}
	worst := map[string]time.Duration{}
	early := 0
	var mu sync.Mutex
	for _, s := range conns {
		d := <-s.closed
		mu.Lock()
		switch {
		case d < 0:
			t.Errorf("%s connection still open after %v", s.kind, bound)
		case d < time.Second && s.kind == "sip-tcp":
			early++ // over the per-source limit: closed at once
		default:
			if d > worst[s.kind] {
				worst[s.kind] = d
			}
		}
		mu.Unlock()
	}
	for k, w := range worst {
		// Closed after the timeout, give or take the machine's load: a
		// close long before it would mean the limit is not what we think.
		if w < limits[k]/2 {
			t.Errorf("%s connections closed after %v, before the %v timeout", k, w, limits[k])
		}
	}
	if early < 6 {
		t.Errorf("%d SIP TCP connections over the per-source limit closed at once, want 6", early)
	}
	t.Logf("200 slow connections: last closed after sip-tcp %v, sip-tls %v, admin %v; %d refused over the per-source limit",
		worst["sip-tcp"].Round(time.Millisecond), worst["sip-tls"].Round(time.Millisecond), worst["admin"].Round(time.Millisecond), early)
	for i := 0; i < 50 && u.openFDs(t) > fdsBefore+10; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if n := u.openFDs(t); n > fdsBefore+10 {
		t.Errorf("unit holds %d file descriptors after the slow clients, %d before", n, fdsBefore)
	}
	if !u.alive() {
		t.Fatal("unit died")
	}
}
