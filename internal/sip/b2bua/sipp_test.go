package b2bua

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// freePort returns a port that was free on ip for network a moment ago.
func freePort(t *testing.T, network, ip string) int {
	t.Helper()
	if network == "tcp" {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// freeMediaPort returns a port p such that p to p+3 were free for UDP on
// ip a moment ago: sipp binds its audio socket on -mp and its video socket
// on -mp+2 and exits when either is taken, so a free -mp alone is not
// enough (the relay and other tests hold many UDP ports on loopback).
func freeMediaPort(t *testing.T, ip string) int {
	t.Helper()
	for range 100 {
		p := freePort(t, "udp", ip)
		if p+3 > 65535 {
			continue
		}
		var held []net.PacketConn
		for i := 0; i <= 3; i++ {
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(p+i)))
			if err != nil {
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if len(held) == 4 {
			return p
		}
	}
	t.Fatalf("no four consecutive free UDP ports on %s", ip)
	return 0
}

// startSippUAS runs sipp as the answering side on ip and returns its port.
func startSippUAS(t *testing.T, ip, transport string) int {
	t.Helper()
	return startSippUASScenario(t, "uas.xml", ip, transport)
}

// startSippUASScenario is startSippUAS with testdata/sipp/<name>.
func startSippUASScenario(t *testing.T, name, ip, transport string) int {
	t.Helper()
	port := freePort(t, "udp", ip)
	if transport == "tcp" {
		port = freePort(t, "tcp", ip)
	}
	sf, _ := filepath.Abs("testdata/sipp/" + name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, "sipp", "-sf", sf, "-i", ip, "-p", strconv.Itoa(port),
		"-t", map[string]string{"udp": "u1", "tcp": "t1"}[transport], "-nostdin", "-bind_local",
		"-mi", ip, "-mp", strconv.Itoa(freeMediaPort(t, ip)))
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	// wait until it listens
	for i := 0; i < 200; i++ {
		if transport == "tcp" {
			if c, err := net.Dial("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
				c.Close()
				break
			}
		} else if c, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port))); err != nil {
			break
		} else {
			c.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return port
}

// runSippUAC places n calls from ip through the unit at dst and fails the
// test unless every call succeeded.
func runSippUAC(t *testing.T, ip, transport, dst string, n int) {
	t.Helper()
	runSippScenario(t, "uac.xml", ip, transport, dst, n)
}

// runSippScenario is runSippUAC with the scenario testdata/sipp/<name>.
func runSippScenario(t *testing.T, name, ip, transport, dst string, n int) {
	t.Helper()
	sf, _ := filepath.Abs("testdata/sipp/" + name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A port taken between our probe and sipp's bind makes sipp exit before
	// its first call: only then is it run again, on other ports.
	for try := 1; ; try++ {
		dir := t.TempDir()
		cmd := exec.CommandContext(ctx, "sipp", "-sf", sf, dst, "-s", "4930123", "-i", ip,
			"-p", strconv.Itoa(freePort(t, transport, ip)), "-t", map[string]string{"udp": "u1", "tcp": "t1"}[transport],
			"-m", strconv.Itoa(n), "-r", "20", "-l", "20", "-recv_timeout", "10000", "-timeout", "40s",
			"-nostdin", "-bind_local", "-mi", ip, "-mp", strconv.Itoa(freeMediaPort(t, ip)),
			"-trace_err", "-error_file", filepath.Join(dir, "err.log"))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		if try < 3 && sippBindFailed(string(out)) {
			t.Logf("sipp UAC could not bind its ports (try %d): again", try)
			continue
		}
		errs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
		t.Fatalf("sipp UAC: %v\n%s\n%s", err, tail(string(out), 1500), tail(string(errs), 3000))
	}
}

// sippBindFailed tells whether sipp stopped because a socket of its own
// could not be bound (at start-up, before any call).
func sippBindFailed(out string) bool { return strings.Contains(out, "Unable to bind") }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestSippInterop runs sipp as the PBX and as the far end, over UDP and TCP,
// in both directions through the unit.
func TestSippInterop(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("install Debian package sip-tester (sipp)")
	}
	for _, tr := range []string{"udp", "tcp"} {
		for _, dir := range []string{"pbx calls out", "trunk calls in"} {
			t.Run(tr+"/"+dir, func(t *testing.T) {
				uacIP, uasIP := "127.0.0.1", "127.0.0.3"
				if dir == "trunk calls in" {
					uacIP, uasIP = "127.0.0.3", "127.0.0.1"
				}
				uasPort := startSippUAS(t, uasIP, tr)
				u := newTestUnit(t, nil, nil, func(c *config.Config) {
					c.SIP.Listeners = []config.Listener{
						{Interface: "inside", Transport: tr}, {Interface: "outside", Transport: tr},
					}
					pbxAddr, itspAddr := "127.0.0.1:5", "127.0.0.3:5"
					if dir == "pbx calls out" {
						itspAddr = "127.0.0.3:" + strconv.Itoa(uasPort)
					} else {
						pbxAddr = "127.0.0.1:" + strconv.Itoa(uasPort)
					}
					c.Peers = []config.Peer{
						{Name: "pbx", Kind: "pbx", Interface: "inside", Address: pbxAddr, Transport: tr},
						{Name: "itsp", Kind: "itsp", Interface: "outside", Address: itspAddr, Transport: tr},
					}
				})
				dst := u.ListenAddr("inside", tr)
				if dir == "trunk calls in" {
					dst = u.ListenAddr("outside", tr)
				}
				runSippUAC(t, uacIP, tr, dst.String(), 20)
				waitNoCalls(t, u.Service)
			})
		}
	}
}
