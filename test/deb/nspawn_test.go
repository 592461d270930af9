package deb_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServiceUnderSystemd installs the package the way an administrator
// does on a Debian system booted with systemd: a minimal Debian tree
// (debootstrap, kept between runs) booted in a container (systemd-nspawn
// --boot, no network), where a one-shot unit runs `dpkg -i`, `systemctl
// enable --now palisade` and `palisade status`, then powers off. It checks
// what the admin sees: the service active (Type=notify: only after READY=1,
// under the unit's sandbox), the data directory owned by the palisade user,
// the unit answering over admin.sock, and its start in the journal.
func TestServiceUnderSystemd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (debootstrap, systemd-nspawn)")
	}
	for _, tool := range []string{"debootstrap", "systemd-nspawn"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("install Debian packages debootstrap and systemd-container (%s missing)", tool)
		}
	}
	mirror, suite := aptSource(t)
	root := filepath.Join(os.TempDir(), "palisade-nspawn-"+suite)
	if _, err := os.Stat(filepath.Join(root, ".complete")); err != nil {
		os.RemoveAll(root)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus,passwd", suite, root, mirror)
		if b, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(root)
			t.Fatalf("debootstrap %s from %s: %v\n%s", suite, mirror, err, tail(string(b), 30))
		}
		if err := os.WriteFile(filepath.Join(root, ".complete"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deb := makeDeb(t, "0.9.0", t.TempDir())
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	write := func(p string, data string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("root/palisade.deb", string(b), 0o644)
	os.Remove(filepath.Join(root, "root/check.log"))
	// A previous run's unit and data are purged first: the tree is reused.
	write("root/check.sh", `#!/bin/sh
exec > /root/check.log 2>&1
dpkg -P palisade >/dev/null 2>&1
rm -rf /var/lib/palisade
dpkg -i /root/palisade.deb && echo INSTALLED
systemctl enable --now palisade
for i in $(seq 1 120); do systemctl is-active --quiet palisade && break; sleep 0.5; done
echo "ACTIVE=$(systemctl is-active palisade)"
echo "TYPE=$(systemctl show -p Type --value palisade)"
stat -c 'DATA=%U:%G %a' /var/lib/palisade
palisade --data /var/lib/palisade status unit
journalctl -b -u palisade --no-pager | grep -c 'unit running' | sed 's/^/JOURNAL=/'
echo CHECK-DONE
systemctl poweroff
`, 0o755)
	write("etc/systemd/system/palisade-check.service", `[Unit]
Description=install and start palisade (test)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/check.sh
[Install]
WantedBy=multi-user.target
`, 0o644)
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	os.MkdirAll(wants, 0o755)
	os.Remove(filepath.Join(wants, "palisade-check.service"))
	if err := os.Symlink("/etc/systemd/system/palisade-check.service", filepath.Join(wants, "palisade-check.service")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --register=no and --keep-unit: the host needs no systemd of its own.
	boot := exec.CommandContext(ctx, "systemd-nspawn", "-q", "-D", root, "--boot", "--register=no", "--keep-unit", "--private-network")
	out, err := boot.CombinedOutput()
	logText, rerr := os.ReadFile(filepath.Join(root, "root/check.log"))
	if rerr != nil || !strings.Contains(string(logText), "CHECK-DONE") {
		t.Fatalf("the container did not run the check (%v, %v):\n%s\n%s", err, rerr, tail(string(out), 40), logText)
	}
	got := string(logText)
	t.Logf("inside the container:\n%s", got)
	for _, want := range []string{"INSTALLED", "ACTIVE=active", "TYPE=notify", "DATA=palisade:palisade", "running (pid"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in what the container saw", want)
		}
	}
	// The tree is reused, so the journal may hold earlier runs' starts too.
	if !lineMatches(got, `^JOURNAL=[1-9][0-9]*$`) {
		t.Error("the unit's start is not in the journal")
	}
}

// aptSource is the first Debian archive this machine's apt uses and its
// release's code name (debootstrap fetches the same packages apt would).
func aptSource(t *testing.T) (mirror, suite string) {
	t.Helper()
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VERSION_CODENAME="); ok {
				suite = strings.Trim(v, `"`)
			}
		}
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range append(files, "/etc/apt/sources.list") {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() && mirror == "" {
			l := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(l, "URIs:"); ok && !strings.Contains(v, "security") {
				mirror = strings.Fields(v)[0]
			} else if f := strings.Fields(l); len(f) >= 3 && f[0] == "deb" && !strings.Contains(f[1], "security") {
				mirror = f[1]
			}
		}
		fh.Close()
		if mirror != "" {
			break
		}
	}
	if mirror == "" || suite == "" {
		t.Skip("no Debian archive in apt's sources or no release code name")
	}
	return mirror, suite
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
