package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// binPath is the palisade binary built once for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) { testkit.MainWithPalisade(m, &binPath) }

type unitProc struct {
	*testkit.Proc
	log *testkit.SyncBuffer
}

// testConfigFile writes the document a test unit starts with: the defaults
// with every SIP listener on a free port (other units may hold 5060/5061).
func testConfigFile(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	for i, l := range cfg.SIP.Listeners {
		cfg.SIP.Listeners[i].Port = freeListenerPort(t, l)
	}
	both := testkit.FreeBoth(t, "127.0.0.1") // UDP and TCP on one port, as by default
	cfg.SIP.Listeners[0].Port, cfg.SIP.Listeners[1].Port = both, both
	cfg.Media.PortMin = (41000 + testkit.FreePort(t, "udp", "127.0.0.1")%10000) &^ 1 // even: RTP, RTCP above
	cfg.Media.PortMax = cfg.Media.PortMin + 99
	return writeInitial(t, cfg)
}

// freeListenerPort is a free port for listener l on the test's address of
// its interface (inside 127.0.0.1, outside 127.0.0.2).
func freeListenerPort(t *testing.T, l config.Listener) int {
	t.Helper()
	ip := "127.0.0.1"
	if l.Interface == "outside" {
		ip = "127.0.0.2"
	}
	net := "tcp"
	if l.Transport == "udp" {
		net = "udp"
	}
	return testkit.FreePort(t, net, ip)
}

// writeInitial writes cfg as an --initial-config file and returns its path.
func writeInitial(t *testing.T, cfg *config.Config) string {
	t.Helper()
	b, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), "initial.json", b)
}

// startUnit runs `palisade run` on dir and waits until admin.sock answers.
func startUnit(t *testing.T, dir, initial string, extra ...string) *unitProc {
	t.Helper()
	return startUnitIn(t, "", dir, initial, extra...)
}

// startUnitIn is startUnit in the network namespace ns ("" = the test's).
func startUnitIn(t *testing.T, ns, dir, initial string, extra ...string) *unitProc {
	t.Helper()
	args := append([]string{"run", "--data", dir, "--admin-listen", "127.0.0.1:0",
		"--initial-config", initial, "--drain-timeout", "5s", "--log-level", "debug"}, extra...)
	cmd := exec.Command(binPath, args...)
	if ns != "" {
		// ip execs the unit itself: its process id is the unit's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, binPath}, args...)...)
	}
	p := &unitProc{log: &testkit.SyncBuffer{}}
	cmd.Stderr = p.log
	p.Proc = testkit.Start(t, cmd, 0)
	sock := filepath.Join(dir, admin.SocketFile)
	p.WaitReady(t, "palisade run", func() bool { return socketAnswers(sock) }, 50*time.Millisecond, 0, p.log.String)
	return p
}

// stop sends SIGTERM and waits for the unit to exit.
func (p *unitProc) stop(t *testing.T) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("palisade run exited %d after SIGTERM:\n%s", code, p.log)
	}
}

type cliResult struct {
	stdout, stderr string
	code           int
}

func palisade(t *testing.T, dir string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"--data", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{out.String(), errb.String(), code}
}

// mustCLI runs palisade and fails the test when it exits non-zero.
func mustCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := palisade(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("palisade %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func unitName(t *testing.T, doc string) string {
	t.Helper()
	cfg, err := config.Decode([]byte(doc))
	if err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	return cfg.Unit.Name
}

// TestAcceptanceApplyRevertConfirm is issue 2's acceptance run with a real
// unit process: an unconfirmed apply goes back by itself, a confirmed one
// survives a restart and shows in the history.
func TestAcceptanceApplyRevertConfirm(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initial := testConfigFile(t)
	u := startUnit(t, dir, initial)

	pw, err := os.ReadFile(filepath.Join(dir, PasswordFile))
	if err != nil || len(bytes.TrimSpace(pw)) < 16 {
		t.Fatalf("initial admin password file: %q, %v", pw, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, PasswordFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", PasswordFile, fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(dir, admin.SocketFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", admin.SocketFile, fi.Mode().Perm())
	}

	// export, change a value, import.
	a := filepath.Join(t.TempDir(), "a.json")
	mustCLI(t, dir, "config", "export", a)
	doc, _ := os.ReadFile(a)
	old := unitName(t, string(doc))
	edited := bytes.Replace(doc, []byte(`"name": "`+old+`"`), []byte(`"name": "edge-test"`), 1)
	if bytes.Equal(edited, doc) {
		t.Fatalf("unit.name not found in the export:\n%s", doc)
	}
	os.WriteFile(a, edited, 0o600)
	mustCLI(t, dir, "config", "import", a)
	if got := unitName(t, mustCLI(t, dir, "config", "show", "--running")); got != old {
		t.Fatalf("import changed the running configuration: %q", got)
	}

	// apply with a short window and let it run out.
	mustCLI(t, dir, "config", "apply", "--confirm-within", "2s")
	if got := unitName(t, mustCLI(t, dir, "config", "show", "--running")); got != "edge-test" {
		t.Fatalf("after apply the unit runs %q", got)
	}
	waitNotPending(t, dir)
	if got := unitName(t, mustCLI(t, dir, "config", "show", "--running")); got != old {
		t.Fatalf("after the window ran out the unit runs %q, want %q", got, old)
	}
	if !strings.Contains(u.log.String(), "confirmation window ran out") {
		t.Fatalf("the unit's log does not say the confirmation window ran out:\n%s", u.log)
	}

	// apply again and confirm in time.
	mustCLI(t, dir, "config", "apply", "--confirm-within", "5m")
	out := mustCLI(t, dir, "config", "confirm")
	if !strings.Contains(out, "version") {
		t.Fatalf("confirm said %q", out)
	}

	// restart: the confirmed value survives and the history shows it.
	u.stop(t)
	if socketAnswers(filepath.Join(dir, admin.SocketFile)) {
		t.Fatal("admin.sock still answers after the unit stopped")
	}
	startUnit(t, dir, initial)
	if got := unitName(t, mustCLI(t, dir, "config", "show", "--running")); got != "edge-test" {
		t.Fatalf("after restart the unit runs %q, want the confirmed edge-test", got)
	}
	var hist []struct {
		Number int    `json:"number"`
		Author string `json:"author"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "config", "history", "--json")), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) < 2 || !strings.HasPrefix(hist[len(hist)-1].Author, "local:") {
		t.Fatalf("history after confirm: %+v", hist)
	}
	if text := mustCLI(t, dir, "config", "history"); !strings.Contains(text, fmt.Sprint(hist[len(hist)-1].Number)) {
		t.Fatalf("history text lacks the new version:\n%s", text)
	}
}

// waitNotPending waits until the unit no longer waits for a confirmation.
// It polls without a deadline of its own: the test's -timeout bounds it.
func waitNotPending(t *testing.T, dir string) {
	t.Helper()
	for {
		var st struct {
			Pending bool `json:"pending_confirm"`
		}
		if err := json.Unmarshal([]byte(mustCLI(t, dir, "config", "state", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		if !st.Pending {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestImportWithThreeMistakes: every mistake is listed with its path, exit
// status is non-zero, nothing changes.
func TestImportWithThreeMistakes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	startUnit(t, dir, testConfigFile(t))
	before := mustCLI(t, dir, "config", "export")
	cfg, err := config.Decode([]byte(before))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SIP.Listeners[0].Port = 70000
	cfg.SIP.Listeners[2].Transport = "smoke-signals"
	cfg.TLS.MinVersion = "0.9"
	b, _ := config.Encode(cfg)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, b, 0o600)
	r := palisade(t, dir, "config", "import", bad)
	if r.code == 0 {
		t.Fatalf("import of a broken document exited 0: %s", r.stdout)
	}
	for _, p := range []string{"sip.listeners[0].port", "sip.listeners[2].transport", "tls.min_version"} {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("the error output does not name %s:\n%s", p, r.stderr)
		}
	}
	if after := mustCLI(t, dir, "config", "export"); after != before {
		t.Fatalf("a rejected import changed the preliminary configuration")
	}
}

// TestStoppedUnitAndRemoteServer: with no unit running the CLI edits the
// data directory but refuses to apply; over --server a token and the
// unit's certificate (--ca) are needed.
func TestStoppedUnitAndRemoteServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	u := startUnit(t, dir, testConfigFile(t))
	addr, err := os.ReadFile(filepath.Join(dir, admin.AddrFile))
	if err != nil {
		t.Fatal(err)
	}
	server := "https://" + strings.TrimSpace(string(addr))
	ca := filepath.Join(dir, admin.CertFile)

	// Make a token over admin.sock, then use the HTTPS listener with it.
	r := palisade(t, dir, "--server", server, "--ca", ca, "config", "show")
	if r.code == 0 || !strings.Contains(r.stderr, "token") {
		t.Fatalf("--server without a token: exit %d %s", r.code, r.stderr)
	}
	tok := mustCLI(t, dir, "token", "new", "e2e")
	tok = strings.TrimSpace(tok)
	if out := mustCLI(t, dir, "--server", server, "--ca", ca, "--token", tok, "config", "show", "--running"); unitName(t, out) == "" {
		t.Fatal("no document over --server")
	}
	if r := palisade(t, dir, "--server", server, "--token", tok, "config", "show"); r.code == 0 {
		t.Fatal("an unknown self-signed certificate was accepted without --ca or --insecure")
	}
	if r := palisade(t, dir, "--server", server, "--ca", ca, "--token", tok+"x", "config", "show"); r.code == 0 || !strings.Contains(r.stderr, "log in") {
		t.Fatalf("a wrong token: exit %d %s", r.code, r.stderr)
	}
	// The web admin is mounted on the same listener (wire.go).
	if page := httpsGet(t, server+"/login", ca); !strings.Contains(page, `name="password"`) {
		t.Fatalf("no login page on the admin listener:\n%.500s", page)
	}
	u.stop(t)

	mustCLI(t, dir, "config", "set", "unit.name", `"offline-edit"`)
	if got := strings.TrimSpace(mustCLI(t, dir, "config", "get", "unit.name")); got != `"offline-edit"` {
		t.Fatalf("config get after an offline set: %s", got)
	}
	r = palisade(t, dir, "config", "apply")
	if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "not running") {
		t.Fatalf("apply on a stopped unit: exit %d, %q", r.code, r.stderr)
	}
	if d := mustCLI(t, dir, "config", "diff"); !strings.Contains(d, "unit.name") {
		t.Fatalf("diff running preliminary:\n%s", d)
	}

	// backup, change, restore: the backup's document is preliminary again.
	bk := filepath.Join(t.TempDir(), "backup")
	mustCLI(t, dir, "config", "backup", bk, "--passphrase", "pw-backup")
	mustCLI(t, dir, "config", "set", "unit.name", "after-backup")
	mustCLI(t, dir, "config", "restore", bk, "--passphrase", "pw-backup")
	if got := strings.TrimSpace(mustCLI(t, dir, "config", "get", "unit.name")); got != `"offline-edit"` {
		t.Fatalf("unit.name after restore: %s", got)
	}
	mustCLI(t, dir, "config", "undo")
	if d := mustCLI(t, dir, "config", "diff"); !strings.Contains(d, "same") {
		t.Fatalf("diff after undo:\n%s", d)
	}
}

// TestRunJSONLogsSecondUnitAndSIGINT: JSON logs, a second unit on the same
// data directory is refused, SIGINT stops at once and removes admin.sock.
func TestRunJSONLogsSecondUnitAndSIGINT(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initial := testConfigFile(t)
	u := startUnit(t, dir, initial, "--log-format", "json")
	r := palisade(t, dir, "run", "--admin-listen", "127.0.0.1:0")
	if r.code == 0 || !strings.Contains(r.stderr, "already running") {
		t.Fatalf("second unit on the same data directory: exit %d %s", r.code, r.stderr)
	}
	if err := u.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-u.Done()
	if code := u.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d after SIGINT:\n%s", code, u.log)
	}
	lines := strings.Split(strings.TrimSpace(u.log.String()), "\n")
	var stopped bool
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		stopped = stopped || rec["msg"] == "SIGINT: stopping now"
	}
	if !stopped {
		t.Fatalf("no SIGINT line in the log:\n%s", u.log)
	}
	if _, err := os.Stat(filepath.Join(dir, admin.SocketFile)); !os.IsNotExist(err) {
		t.Fatalf("admin.sock left behind: %v", err)
	}
}

// TestKilledDuringConfirmWindow: a unit killed (SIGKILL) while an applied
// configuration waits for confirmation starts again on the saved one and
// says why; the stale admin.sock of the killed unit does not get in the way.
func TestKilledDuringConfirmWindow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initial := testConfigFile(t)
	u := startUnit(t, dir, initial)
	mustCLI(t, dir, "config", "set", "unit.name", "unconfirmed")
	mustCLI(t, dir, "config", "apply", "--confirm-within", "10m")
	if got := unitName(t, mustCLI(t, dir, "config", "show", "--running")); got != "unconfirmed" {
		t.Fatalf("after apply the unit runs %q", got)
	}
	u.Stop(0)
	if _, err := os.Stat(filepath.Join(dir, admin.SocketFile)); err != nil {
		t.Fatalf("a killed unit leaves its socket behind; the test needs it there: %v", err)
	}
	startUnit(t, dir, initial)
	if got := unitName(t, mustCLI(t, dir, "config", "show", "--running")); got == "unconfirmed" {
		t.Fatal("the unit restarted on an unconfirmed configuration")
	}
	var st struct {
		Pending bool   `json:"pending_confirm"`
		Reason  string `json:"last_revert_reason"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "config", "state", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Pending || !strings.Contains(st.Reason, "restarted") {
		t.Fatalf("state after restart: %+v", st)
	}
	// The unconfirmed edit is still in preliminary, ready to apply again.
	if got := strings.TrimSpace(mustCLI(t, dir, "config", "get", "unit.name")); got != `"unconfirmed"` {
		t.Fatalf("preliminary after restart: %s", got)
	}
}

// httpsGet fetches url trusting only the certificate in caFile and returns
// the body of a 200 answer.
func httpsGet(t *testing.T, url, caFile string) string {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}
