// Package testkit is the scaffolding that the tests of several packages
// share: the palisade binary built once, free loopback ports, a log buffer
// a child process writes while the test reads it, golden files, and the
// skip for a missing Debian peer. Import it only from _test.go files.
//
// It defines the -update flag (rewrite golden files); a test package that
// imports testkit must not define its own.
package testkit

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Update is the -update flag: Golden rewrites the files instead of comparing.
var Update = flag.Bool("update", false, "rewrite golden files in testdata/")

// Golden compares got with the file at path, or rewrites the file with -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update and review the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// SyncBuffer collects what a child process or a logger writes while the
// test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort returns a port that was free on ip a moment ago, for network
// "udp" or "tcp". For peers that cannot listen on port 0 (sipp, baresip,
// kamailio) or a configuration written before the unit starts.
func FreePort(t testing.TB, network, ip string) int {
	t.Helper()
	// A port the kernel gave out for :0 is an ephemeral one: between this
	// check and the unit's bind, any connect on the machine may take it as
	// its source port. Ports 10000-19999 are below the ephemeral range
	// (32768-60999) and the units' media ports (20000-39999), so only a
	// bind takes them; each test process walks them from a random start
	// so that two processes seldom try the same ones, every portStride-th.
	for range 100 {
		p := portBase + int(portNext.Add(portStride))%10000
		if portFree(network, net.JoinHostPort(ip, strconv.Itoa(p))) {
			return p
		}
	}
	if network == "udp" {
		c, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const (
	portBase = 10000
	// portStride leaves the ports above each one free: peers take the
	// next ones (sipp: RTP at -mp, RTCP and video above it).
	portStride = 8
)

var portNext = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(10000))
	return &n
}()

// portFree reports whether addr can be bound for network now.
func portFree(network, addr string) bool {
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// FreeBoth returns a port free on ip for both UDP and TCP, for a SIP
// listener pair on one port (a port free for UDP may be taken for TCP).
func FreeBoth(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		p := FreePort(t, "udp", ip)
		if l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p))); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no port free for UDP and TCP")
	return 0
}

// NeedBinary returns the path of the interop peer bin, or skips the test
// naming the Debian package that brings it.
func NeedBinary(t testing.TB, bin, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Skip("install Debian package " + debianPackage)
	}
	return p
}

// LastLines is the end of s (at most n lines), for failure messages.
func LastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// MainWithPalisade is a TestMain that builds cmd/palisade once into a
// temporary directory, stores its path in *bin, runs the tests and exits.
// When *bin is set already (e.g. from an environment variable) that binary
// is used as it is.
func MainWithPalisade(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "palisade-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *bin == "" {
		*bin = filepath.Join(dir, "palisade")
		out, err := exec.Command("go", "build", "-o", *bin, "github.com/palisade-sbc/palisade/cmd/palisade").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build palisade: %v\n%s", err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
