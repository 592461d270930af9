// Package etcdtest starts a real etcd cluster (Debian's etcd-server) on
// free loopback ports for tests, with its data on tmpfs when there is one.
package etcdtest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/testkit"
)

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:PORT
	PeerURL   string
	dir       string
	proc      *testkit.Proc
	log       *testkit.SyncBuffer
}

// Cluster is an etcd cluster of a test.
type Cluster struct {
	t       testing.TB
	bin     string
	initial string // --initial-cluster
	token   string // --initial-cluster-token
	timing  []string
	netns   string // the members' network namespace, "" = the test's
	Members []*Member
}

// An Option changes how the members run.
type Option func(*Cluster)

// ShortLeases runs the members with a heartbeat of 100 ms and an election
// timeout of 600 ms, so that etcd grants a lease of 1 s as asked. etcd
// raises every TTL to its minimum, 1.5 election timeouts rounded up to a
// whole second: 2 s with its defaults (100 ms, 1 s). 600 ms is still six
// heartbeats, and a leader change extends every lease, so a busy machine
// does not lose leases to it.
func ShortLeases() Option {
	return func(c *Cluster) {
		c.timing = []string{"--heartbeat-interval", "100", "--election-timeout", "600"}
	}
}

var seq atomic.Int64

// Start starts an n-member cluster and waits until every member reports
// itself healthy. The test is skipped when etcd is not installed.
func Start(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	return StartIn(t, n, "", "", opts...)
}

// StartIn is Start with the members in the network namespace netns, made
// by the test, listening on ip there on fixed ports from 2379 up, as hosts
// of a test network would (the test must reach ip). With netns "" it is
// Start: loopback, free ports.
func StartIn(t testing.TB, n int, netns, ip string, opts ...Option) *Cluster {
	t.Helper()
	bin := testkit.NeedBinary(t, "etcd", "etcd-server")
	base := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm" // Raft fsyncs: tmpfs keeps a busy disk out of the test
	}
	root, err := os.MkdirTemp(base, "palisade-etcd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	c := &Cluster{t: t, bin: bin, netns: netns, token: fmt.Sprintf("palisade-test-%d-%d", os.Getpid(), seq.Add(1))}
	for _, o := range opts {
		o(c)
	}
	var initial []string
	for i := range n {
		client, peer := 2379+2*i, 2380+2*i
		if netns == "" {
			ip = "127.0.0.1"
			client, peer = testkit.FreePort(t, "tcp", ip), testkit.FreePort(t, "tcp", ip)
		}
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://%s:%d", ip, client),
			PeerURL:   fmt.Sprintf("http://%s:%d", ip, peer),
			dir:       filepath.Join(root, fmt.Sprintf("m%d", i)),
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	c.initial = strings.Join(initial, ",")
	for i := range c.Members {
		c.StartMember(i)
	}
	for i := range c.Members {
		c.WaitHealthy(i)
	}
	return c
}

// StartMember starts member i (again, after StopMember or KillMember).
func (c *Cluster) StartMember(i int) {
	c.t.Helper()
	m := c.Members[i]
	m.log = &testkit.SyncBuffer{}
	cmd := exec.Command(c.bin, append([]string{
		"--name", m.Name,
		"--data-dir", m.dir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", c.initial,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", c.token,
		"--logger", "zap", "--log-level", "warn",
	}, c.timing...)...)
	if c.netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", c.netns}, cmd.Args...)...) // ip execs etcd: same process
	}
	cmd.Stdout, cmd.Stderr = m.log, m.log
	m.proc = testkit.Start(c.t, cmd, 5*time.Second)
}

// WaitHealthy waits until member i answers /health with true.
func (c *Cluster) WaitHealthy(i int) {
	c.t.Helper()
	m := c.Members[i]
	hc := &http.Client{Timeout: 2 * time.Second}
	m.proc.WaitReady(c.t, "etcd "+m.Name, func() bool {
		resp, err := hc.Get(m.ClientURL + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `"health":"true"`)
	}, 200*time.Millisecond, 600, func() string { return testkit.LastLines(m.log.String(), 30) })
}

// Wipe replaces the cluster by an empty one under the same addresses, as
// a restore of an old backup or a new cluster would: every member is
// killed, its data removed, and all are started again as a new cluster.
func (c *Cluster) Wipe() {
	c.t.Helper()
	for i, m := range c.Members {
		c.KillMember(i)
		if err := os.RemoveAll(m.dir); err != nil {
			c.t.Fatal(err)
		}
	}
	c.token += "-wiped"
	for i := range c.Members {
		c.StartMember(i)
	}
	for i := range c.Members {
		c.WaitHealthy(i)
	}
}

// KillMember kills member i with SIGKILL.
func (c *Cluster) KillMember(i int) { c.Members[i].proc.Stop(0) }

// Endpoints are the members' client addresses (HOST:PORT).
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, strings.TrimPrefix(m.ClientURL, "http://"))
	}
	return out
}

// URL is the --store value for the cluster with the namespace ns.
func (c *Cluster) URL(ns string) string {
	u := "etcd://" + strings.Join(c.Endpoints(), ",")
	if ns != "" {
		u += "/" + ns
	}
	return u
}
