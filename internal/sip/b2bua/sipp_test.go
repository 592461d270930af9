package b2bua

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// startSippUAS runs sipp as the answering side on ip and returns its port.
func startSippUAS(t *testing.T, ip, transport string) int {
	t.Helper()
	port := freePort(t, "udp", ip)
	if transport == "tcp" {
		port = freePort(t, "tcp", ip)
	}
	sf, _ := filepath.Abs("testdata/sipp/uas.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, "sipp", "-sf", sf, "-i", ip, "-p", strconv.Itoa(port),
		"-t", map[string]string{"udp": "u1", "tcp": "t1"}[transport], "-nostdin", "-bind_local",
		"-mi", ip, "-mp", strconv.Itoa(freePort(t, "udp", ip)))
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
	sf, _ := filepath.Abs("testdata/sipp/uac.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, "sipp", "-sf", sf, dst, "-s", "4930123", "-i", ip,
		"-p", strconv.Itoa(freePort(t, transport, ip)), "-t", map[string]string{"udp": "u1", "tcp": "t1"}[transport],
		"-m", strconv.Itoa(n), "-r", "20", "-l", "20", "-recv_timeout", "10000", "-timeout", "40s",
		"-nostdin", "-bind_local", "-mi", ip, "-mp", strconv.Itoa(freePort(t, "udp", ip)),
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
		t.Fatalf("sipp UAC: %v\n%s\n%s", err, tail(string(out), 1500), tail(string(errs), 3000))
	}
}

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
