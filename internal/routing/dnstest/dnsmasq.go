package dnstest

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNoDnsmasq is returned when the dnsmasq binary is not installed.
var ErrNoDnsmasq = errors.New("install Debian package dnsmasq-base")

// Dnsmasq is a dnsmasq child process serving records on a loopback port.
type Dnsmasq struct {
	Addr   string
	cancel context.CancelFunc
	cmd    *exec.Cmd
	stderr *strings.Builder
}

// StartDnsmasq runs dnsmasq on 127.0.0.1 with the given record options
// (--srv-host=..., --naptr-record=..., --host-record=...) and waits until it
// answers.
func StartDnsmasq(records ...string) (*Dnsmasq, error) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		return nil, ErrNoDnsmasq
	}
	// dnsmasq binds UDP and TCP on its port; a port found free can be
	// taken by another process before dnsmasq binds it, so a start that
	// failed on that is tried again on another port.
	for try := 1; ; try++ {
		d, err := startDnsmasq(bin, records)
		if err == nil || try == 3 || !strings.Contains(err.Error(), "Address already in use") {
			return d, err
		}
	}
}

func startDnsmasq(bin string, records []string) (*Dnsmasq, error) {
	port, err := freeUDPTCPPort()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	args := append([]string{"--no-daemon", "--port=" + strconv.Itoa(port), "--listen-address=127.0.0.1",
		"--bind-interfaces", "--no-resolv", "--no-hosts", "--user=root", "--pid-file="}, records...)
	cmd := exec.CommandContext(ctx, bin, args...)
	d := &Dnsmasq{Addr: "127.0.0.1:" + strconv.Itoa(port), cancel: cancel, cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("localhost.", dns.TypeA)
	for i := 0; i < 50; i++ {
		if _, _, err := c.Exchange(m, d.Addr); err == nil {
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.Close()
	return nil, errors.New("dnsmasq did not answer: " + d.stderr.String())
}

// freeUDPTCPPort returns a port free for both UDP and TCP on 127.0.0.1 a
// moment ago (TCP ports there are also the local ends of connections).
func freeUDPTCPPort() (int, error) {
	for range 50 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		u.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both UDP and TCP on 127.0.0.1")
}

// Close stops dnsmasq.
func (d *Dnsmasq) Close() {
	d.cancel()
	_ = d.cmd.Wait()
}
