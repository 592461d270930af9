// Package pkitest holds test helpers for TLS interop with real peers.
package pkitest

import (
	"github.com/palisade-sbc/palisade/internal/testkit"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// KamailioTLSModule is where Debian's kamailio-tls-modules puts the module.
const KamailioTLSModule = "/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so"

// KamailioGlobals begins a kamailio.cfg for tests: one worker each, all
// logging to stderr, no DNS.
const KamailioGlobals = `#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=no
`

// KamailioTLSServer is a tls.cfg section for a TLS server that requires and
// verifies client certificates; the format verbs are the paths of its key,
// its certificate (chain) and the CA list it trusts for clients.
const KamailioTLSServer = `[server:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
private_key = %s
certificate = %s
ca_list = %s
`

// SkipWithoutKamailio skips the test when kamailio or its TLS module is missing.
func SkipWithoutKamailio(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("kamailio"); err != nil {
		t.Skip("install Debian packages kamailio and kamailio-tls-modules")
	}
	if _, err := os.Stat(KamailioTLSModule); err != nil {
		t.Skip("install Debian package kamailio-tls-modules")
	}
}

// StartKamailio runs kamailio with the configuration file cfg (its runtime
// files in dir) and waits until it accepts TCP connections on tlsAddr.
// Kamailio forks workers, so it runs in its own process group, and the
// whole group — only the processes this test started — is stopped when the
// test ends. The log is shown when the test failed.
func StartKamailio(t testing.TB, dir, cfg, tlsAddr string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(dir, "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("kamailio", "-f", cfg, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-m", "64", "-M", "8")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Registered first, so that it runs after kamailio has stopped.
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("kamailio log:\n%s", b)
		}
	})
	p := testkit.Start(t, cmd, 10*time.Second)
	listening := func() bool {
		c, err := net.DialTimeout("tcp", tlsAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	// up to 10 s to start listening; the log is shown by the cleanup
	p.WaitReady(t, "kamailio on "+tlsAddr, listening, 100*time.Millisecond, 100, func() string { return "" })
}
