// Package deb_test builds the Debian package twice (two versions) with
// `make deb` and checks it the way an administrator meets it: its contents
// and control data (dpkg-deb), its systemd unit (systemd-analyze verify and
// security), an install into a scratch root with dpkg, the unit's
// ExecStart run from that root as the package's own user, an upgrade over
// the running unit (data directory, saved configuration and a changed
// conffile kept; the unit restarted by the maintainer script), then remove
// and purge. docs/operations.md describes what is checked here.
//
// dpkg runs the maintainer scripts without chroot (--force-script-chrootless,
// $DPKG_ROOT set), with a recording stand-in for systemctl first on PATH,
// and --force-depends: the scratch root has no passwd package.
package deb_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// Loopback addresses of this test's unit.
const (
	insideIP  = "127.0.0.71"
	outsideIP = "127.0.0.72"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// makeDeb runs `make deb` for version into out and returns the package path.
func makeDeb(t *testing.T, version, out string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "-C", repoRoot(t), "deb", "VERSION="+version, "DIST="+out, "DEBBUILD="+filepath.Join(out, "build"))
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1767225600")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "palisade_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb left %v in %s\n%s", debs, out, b)
	}
	return debs[0]
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

func TestDebianPackage(t *testing.T) {
	for _, bin := range [][2]string{{"dpkg", "dpkg"}, {"dpkg-deb", "dpkg"}, {"systemd-analyze", "systemd"}, {"useradd", "passwd"}, {"make", "make"}} {
		testkit.NeedBinary(t, bin[0], bin[1])
	}
	if os.Geteuid() != 0 {
		t.Skip("the scratch-root install runs dpkg and the unit as another user: run as root")
	}
	work := t.TempDir()
	debOld := makeDeb(t, "0.9.0", filepath.Join(work, "old"))
	debNew := makeDeb(t, "0.9.1", filepath.Join(work, "new"))

	t.Run("contents", func(t *testing.T) { checkContents(t, debOld) })

	root := scratchRoot(t, work)
	sysctlLog := filepath.Join(work, "systemctl.log")
	env := fakeSystemctl(t, work, sysctlLog)

	// Fresh install: user, data directory, first-run advice; the unit is
	// neither started nor restarted.
	out := run(t, env, "dpkg", "--root="+root, "--force-script-chrootless", "--force-depends", "-i", debOld)
	if !strings.Contains(out, "palisade setup --data /var/lib/palisade") || !strings.Contains(out, "systemctl enable --now palisade") {
		t.Errorf("postinst does not give the first-run steps:\n%s", out)
	}
	uid, gid := palisadeUser(t, root)
	data := filepath.Join(root, "var/lib/palisade")
	st, err := os.Stat(data)
	if err != nil {
		t.Fatal("no data directory:", err)
	}
	if s := st.Sys().(*syscall.Stat_t); int(s.Uid) != uid || int(s.Gid) != gid || st.Mode().Perm() != 0o750 {
		t.Fatalf("data directory owned %d:%d mode %v, want %d:%d 0750", s.Uid, s.Gid, st.Mode().Perm(), uid, gid)
	}
	if calls := readFile(t, sysctlLog); calls != "daemon-reload\n" {
		t.Fatalf("systemctl calls on a fresh install: %q, want only daemon-reload", calls)
	}
	unitFile := filepath.Join(root, "usr/lib/systemd/system/palisade.service")
	t.Run("unit", func(t *testing.T) { checkUnit(t, root, unitFile) })

	// The service's ExecStart, from the root, as the palisade user.
	initial := initialConfig(t, work)
	u := startExecStart(t, root, unitFile, uid, gid, initial)
	cli := func(args ...string) string {
		return run(t, nil, filepath.Join(root, "usr/bin/palisade"), append([]string{"--data", data}, args...)...)
	}
	if v := cli("version"); !strings.Contains(v, "0.9.0") {
		t.Fatalf("installed binary says %q, want version 0.9.0", v)
	}
	cli("config", "set", "unit.name", `"kept-over-upgrade"`)
	cli("config", "apply")
	cli("config", "confirm")
	password := readFile(t, filepath.Join(data, "initial-admin-password"))
	conffile := filepath.Join(root, "etc/default/palisade")
	edited := readFile(t, conffile) + "# local change by the administrator\n"
	if err := os.WriteFile(conffile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}

	// Upgrade while the unit runs: the running process is untouched by the
	// unpack, and the postinst asks systemd to restart it.
	os.WriteFile(sysctlLog, nil, 0o644)
	out = run(t, env, "dpkg", "--root="+root, "--force-script-chrootless", "--force-depends", "--force-confold", "-i", debNew)
	if !strings.Contains(out, "upgraded from 0.9.0") {
		t.Errorf("postinst on upgrade says:\n%s", out)
	}
	if calls := readFile(t, sysctlLog); calls != "daemon-reload\ntry-restart palisade.service\n" {
		t.Fatalf("systemctl calls on upgrade: %q, want daemon-reload and try-restart of the unit", calls)
	}
	if u.Exited() || !strings.Contains(cli("config", "show", "--running"), `"kept-over-upgrade"`) {
		t.Fatalf("the running unit did not survive the unpack:\n%s", u.log)
	}
	if got := readFile(t, conffile); got != edited {
		t.Errorf("/etc/default/palisade changed by the upgrade:\n%s", got)
	}
	// What systemd's try-restart does: stop, start the new ExecStart.
	u.stopAndWait(t)
	u = startExecStart(t, root, unitFile, uid, gid, initial)
	if v := cli("version"); !strings.Contains(v, "0.9.1") {
		t.Fatalf("after the upgrade the binary says %q, want 0.9.1", v)
	}
	if saved := cli("config", "show", "--saved"); !strings.Contains(saved, `"kept-over-upgrade"`) {
		t.Errorf("unit.name not kept in the saved configuration over the upgrade:\n%s", saved)
	}
	if got := readFile(t, filepath.Join(data, "initial-admin-password")); got != password {
		t.Error("the admin password file changed over the upgrade")
	}
	u.stopAndWait(t)

	// Remove keeps the data; purge deletes it.
	os.WriteFile(sysctlLog, nil, 0o644)
	run(t, env, "dpkg", "--root="+root, "--force-script-chrootless", "-r", "palisade")
	if calls := readFile(t, sysctlLog); !strings.HasPrefix(calls, "stop palisade.service\n") {
		t.Errorf("systemctl calls on remove: %q, want the unit stopped first", calls)
	}
	if _, err := os.Stat(filepath.Join(data, "initial-admin-password")); err != nil {
		t.Errorf("remove deleted the data directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/palisade")); !os.IsNotExist(err) {
		t.Errorf("binary still there after remove: %v", err)
	}
	// As `systemctl enable palisade` would have left it.
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	os.MkdirAll(wants, 0o755)
	if err := os.Symlink("/usr/lib/systemd/system/palisade.service", filepath.Join(wants, "palisade.service")); err != nil {
		t.Fatal(err)
	}
	run(t, env, "dpkg", "--root="+root, "--force-script-chrootless", "-P", "palisade")
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("purge kept the data directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(wants, "palisade.service")); !os.IsNotExist(err) {
		t.Errorf("purge kept the enablement link: %v", err)
	}
}

// checkContents reads the package with dpkg-deb: the files with their
// modes, the control fields, the conffile and the maintainer scripts.
func checkContents(t *testing.T, deb string) {
	list := run(t, nil, "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/palisade",
		"-rw-r--r-- root/root .* ./usr/lib/systemd/system/palisade.service",
		"-rw-r--r-- root/root .* ./etc/default/palisade",
		"-rw-r--r-- root/root .* ./usr/share/man/man1/palisade.1.gz",
		"-rw-r--r-- root/root .* ./usr/share/bash-completion/completions/palisade",
		"-rw-r--r-- root/root .* ./usr/share/doc/palisade/operations.md",
		"-rw-r--r-- root/root .* ./usr/share/doc/palisade/configuration.md",
		"-rw-r--r-- root/root .* ./usr/share/doc/palisade/copyright",
		"-rwxr-xr-x root/root .* ./usr/lib/palisade/keepalived-notify",
		"-rw-r--r-- root/root .* ./usr/share/doc/palisade/examples/keepalived.conf",
		"-rw-r--r-- root/root .* ./usr/share/doc/palisade/examples/ha-floating.conf",
		"-rw-r--r-- root/root .* ./usr/share/doc/palisade/examples/media-realtime.conf",
	} {
		if !lineMatches(list, want) {
			t.Errorf("dpkg-deb -c: no line like %q in\n%s", want, list)
		}
	}
	if strings.Contains(list, "./var/lib/palisade") {
		t.Error("the package ships the data directory; it must be made by postinst/systemd, never owned by dpkg")
	}
	info := run(t, nil, "dpkg-deb", "-I", deb)
	for _, want := range []string{"Package: palisade", "Version: 0.9.0", "Depends: passwd", "Architecture: ", "Section: net", "Description: enterprise session border controller",
		"conffiles", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I: %q missing:\n%s", want, info)
		}
	}
	if cf := run(t, nil, "dpkg-deb", "--ctrl-tarfile", deb); !strings.Contains(cf, "conffiles") {
		t.Error("no conffiles in the control archive")
	}
	x := t.TempDir()
	run(t, nil, "dpkg-deb", "-e", deb, x)
	if cf := readFile(t, filepath.Join(x, "conffiles")); strings.TrimSpace(cf) != "/etc/default/palisade" {
		t.Errorf("conffiles: %q", cf)
	}
	// The man page and completion are the binary's own, not stale copies.
	run(t, nil, "dpkg-deb", "-x", deb, x)
	bin := filepath.Join(x, "usr/bin/palisade")
	man := run(t, nil, "sh", "-c", "gzip -dc "+filepath.Join(x, "usr/share/man/man1/palisade.1.gz"))
	if want := run(t, []string{"SOURCE_DATE_EPOCH=1767225600"}, bin, "manpage"); man != want {
		t.Error("the packaged man page is not what the packaged binary generates")
	}
	if got, want := readFile(t, filepath.Join(x, "usr/share/bash-completion/completions/palisade")), run(t, nil, bin, "completion", "bash"); got != want {
		t.Error("the packaged completion is not what the packaged binary generates")
	}
}

// checkUnit verifies the installed unit file with systemd-analyze and
// checks the settings the package promises.
func checkUnit(t *testing.T, root, unitFile string) {
	text := readFile(t, unitFile)
	for _, want := range []string{
		"Type=notify", "WatchdogSec=", "User=palisade", "Group=palisade", "StateDirectory=palisade",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
		"ExecStart=/usr/bin/palisade run --data /var/lib/palisade",
	} {
		if !lineMatches(text, "^"+regexpQuote(want)) {
			t.Errorf("unit file: no %q", want)
		}
	}
	// verify wants the ExecStart binary on the host's path: check a copy
	// that names the installed binary, with the installed man page on
	// MANPATH so that Documentation=man:palisade(1) is checked too. It
	// exits 0 on some errors, so any output fails.
	dir := t.TempDir()
	copyUnit := filepath.Join(dir, "palisade.service")
	os.WriteFile(copyUnit, []byte(strings.ReplaceAll(text, "/usr/bin/palisade", filepath.Join(root, "usr/bin/palisade"))), 0o644)
	cmd := exec.Command("systemd-analyze", "verify", copyUnit)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"))
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Exposure as systemd rates it; the package keeps it "OK" (below 2.0).
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--threshold=20", "--root="+root, "palisade.service").CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexpFind(string(out), `Overall exposure level for palisade.service: ([0-9.]+)`)
	if m == "" {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if lvl, _ := strconv.ParseFloat(m, 64); lvl > 2.0 {
		t.Errorf("exposure level %s, want at most 2.0:\n%s", m, out)
	}
}

// scratchRoot is an empty root with what dpkg and useradd need in it.
func scratchRoot(t *testing.T, work string) string {
	root := filepath.Join(work, "root")
	for _, d := range []string{"etc", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "run/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		"var/lib/dpkg/status": "", "var/lib/dpkg/available": "",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n",
		"etc/shadow": "root:*:19000:0:99999:7:::\n", "etc/gshadow": "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The unit runs as another user from inside the test's directories.
	for d := root; d != "/" && d != "/tmp"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return root
}

// fakeSystemctl puts a systemctl first on PATH that records its arguments.
func fakeSystemctl(t *testing.T, work, logFile string) []string {
	dir := filepath.Join(work, "fakebin")
	os.MkdirAll(dir, 0o755)
	script := "#!/bin/sh\necho \"$*\" >> " + logFile + "\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
}

func palisadeUser(t *testing.T, root string) (uid, gid int) {
	t.Helper()
	for _, line := range strings.Split(readFile(t, filepath.Join(root, "etc/passwd")), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == "palisade" {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if uid == 0 || uid >= 1000 || f[6] != "/usr/sbin/nologin" || f[5] != "/var/lib/palisade" {
				t.Fatalf("palisade user: %q, want a system user (uid < 1000) with home /var/lib/palisade and no login", line)
			}
			return uid, gid
		}
	}
	t.Fatal("postinst made no palisade user")
	return 0, 0
}

// initialConfig is the defaults on this test's loopback addresses with
// free ports.
func initialConfig(t *testing.T, work string) string {
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: insideIP}, {Name: "outside", Address: outsideIP}}
	for i, l := range cfg.SIP.Listeners {
		ip, network := insideIP, "tcp"
		if l.Interface == "outside" {
			ip = outsideIP
		}
		if l.Transport == "udp" {
			network = "udp"
		}
		cfg.SIP.Listeners[i].Port = testkit.FreePort(t, network, ip)
	}
	both := testkit.FreeBoth(t, insideIP)
	cfg.SIP.Listeners[0].Port, cfg.SIP.Listeners[1].Port = both, both
	cfg.Media.PortMin = (42000 + testkit.FreePort(t, "udp", insideIP)%10000) &^ 1
	cfg.Media.PortMax = cfg.Media.PortMin + 99
	b, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(work, "initial.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type unitProc struct {
	*testkit.Proc
	log *testkit.SyncBuffer
}

// startExecStart runs the unit file's ExecStart with the root's binary and
// data directory, as uid:gid with CAP_NET_BIND_SERVICE as its only
// (ambient) capability, $PALISADE_RUN_ARGS from the root's
// /etc/default/palisade, and a notification socket: it returns once the
// unit said READY=1.
func startExecStart(t *testing.T, root, unitFile string, uid, gid int, initial string) *unitProc {
	t.Helper()
	var execStart string
	sc := bufio.NewScanner(strings.NewReader(readFile(t, unitFile)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			execStart = v
		}
	}
	runArgs := ""
	for _, line := range strings.Split(readFile(t, filepath.Join(root, "etc/default/palisade")), "\n") {
		if v, ok := strings.CutPrefix(line, "PALISADE_RUN_ARGS="); ok {
			runArgs = strings.Trim(v, `"`)
		}
	}
	argv := strings.Fields(strings.ReplaceAll(execStart, "$PALISADE_RUN_ARGS", runArgs))
	if len(argv) < 2 || argv[0] != "/usr/bin/palisade" {
		t.Fatalf("ExecStart=%s", execStart)
	}
	for i, a := range argv {
		if strings.HasPrefix(a, "/usr/") || strings.HasPrefix(a, "/var/") {
			argv[i] = filepath.Join(root, a)
		}
	}
	// Test-only flags: the admin listener on a free port, the first
	// configuration on this test's addresses.
	argv = append(argv, "--admin-listen", "127.0.0.1:0", "--initial-config", initial, "--drain-timeout", "5s")

	notify := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Chown(filepath.Dir(notify), uid, gid)
	os.Chown(notify, uid, gid)
	os.Chmod(filepath.Dir(filepath.Dir(notify)), 0o755)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "NOTIFY_SOCKET=" + notify, "WATCHDOG_USEC=30000000", "HOME=/var/lib/palisade"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		AmbientCaps: []uintptr{10}, // CAP_NET_BIND_SERVICE, as AmbientCapabilities= gives it
	}
	p := &unitProc{log: &testkit.SyncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	p.Proc = testkit.Start(t, cmd, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // only a failure waits this long
	defer cancel()
	go func() { <-ctx.Done(); ln.SetReadDeadline(time.Now()) }()
	buf := make([]byte, 128)
	for {
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 from the unit: %v\n%s", err, p.log)
		}
		if string(buf[:n]) == "READY=1" {
			return p
		}
	}
}

func (p *unitProc) stopAndWait(t *testing.T) {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("the unit did not stop on SIGTERM:\n%s", p.log)
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the unit exited %d on SIGTERM:\n%s", code, p.log)
	}
	// As the service's user, with only its capability, nothing failed
	// (e.g. a file it could not write).
	if strings.Contains(p.log.String(), "level=ERROR") {
		t.Errorf("the unit logged errors:\n%s", p.log)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lineMatches(text, re string) bool {
	return regexp.MustCompile("(?m)" + re).MatchString(text)
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

func regexpFind(text, re string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}
