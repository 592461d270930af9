package setup

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
)

// fullFlags is a complete non-interactive answer set.
func fullFlags(extra ...string) []string {
	return append([]string{"--non-interactive",
		"--admin-password", "s3cret-pass", "--topology", "standalone",
		"--inside-address", "10.0.0.5/24", "--outside-address", "203.0.113.10", "--outside-fqdn", "sbc.example.com",
		"--gateway", "203.0.113.1", "--dns", "9.9.9.9,1.1.1.1:53",
		"--pbx-type", "asterisk", "--pbx-address", "10.0.0.10:5060", "--pbx-transport", "udp",
		"--itsp", "generic", "--itsp-address", "198.51.100.7:5060", "--itsp-transport", "udp", "--itsp-prefix", "9",
		"--itsp-username", "acct", "--itsp-password", "pw", "--itsp-register",
	}, extra...)
}

// saved reads the newest saved configuration of a data directory.
func saved(t *testing.T, dir string) (*config.Config, lifecycle.Version) {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, v, err := lifecycle.StartupConfig(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, v
}

func TestNonInteractiveMissing(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Env{Stdin: strings.NewReader(""), Stdout: &out, Data: t.TempDir()},
		[]string{"--non-interactive", "--itsp", "teams-direct-routing", "--pbx-transport", "carrier-pigeon"})
	if err == nil {
		t.Fatal("setup without values succeeded")
	}
	for _, want := range []string{"--admin-password", "--inside-address", "--outside-address", "--pbx-address", "--outside-fqdn", `--pbx-transport: "carrier-pigeon" is not one of`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestNonInteractiveWritesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	backup := filepath.Join(t.TempDir(), "backup.json")
	var out bytes.Buffer
	if err := Run(context.Background(), Env{Stdin: strings.NewReader(""), Stdout: &out, Data: dir}, fullFlags("--backup", backup, "--certificate", "sbc")); err != nil {
		t.Fatal(err)
	}
	cfg, v := saved(t, dir)
	if !hasCert(cfg, "sbc") || cfg.SIP.Listeners[2].Certificate != "sbc" {
		t.Errorf("certificate sbc not made: %+v", cfg.Certificates.Private)
	}
	if v.Number != 1 {
		t.Errorf("version %d, want 1", v.Number)
	}
	checkBuilt(t, cfg)
	if ok, _ := admin.CheckPassword(cfg.Admin.PasswordHash, "s3cret-pass"); !ok {
		t.Error("admin password not set")
	}
	// The backup restores into a manager as the same configuration.
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	cfg0 := config.Default()
	cfg0.Admin.PasswordHash = cfg.Admin.PasswordHash
	if err := lifecycle.Bootstrap(context.Background(), st, cfg0, "test"); err != nil {
		t.Fatal(err)
	}
	m, _ := lifecycle.New(st, noApply{}, nil)
	defer m.Close()
	if err := m.Restore(context.Background(), data, "", "test"); err != nil {
		t.Fatalf("backup does not restore: %v", err)
	}
	pre, _, _ := m.Preliminary(context.Background())
	checkBuilt(t, pre)

	// A second run on the same directory changes its preliminary only.
	out.Reset()
	if err := Run(context.Background(), Env{Stdin: strings.NewReader(""), Stdout: &out, Data: dir}, fullFlags("--itsp-prefix", "8")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "preliminary") {
		t.Errorf("second run said %q", out.String())
	}
	if cfg, v := saved(t, dir); v.Number != 1 || cfg.Peers[1].Prefix != "9" {
		t.Errorf("second run changed the saved configuration (version %d prefix %s)", v.Number, cfg.Peers[1].Prefix)
	}
}

func checkBuilt(t *testing.T, cfg *config.Config) {
	t.Helper()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("invalid: %v", errs)
	}
	if cfg.Network.Interfaces[0].Address != "10.0.0.5" || cfg.Network.Interfaces[1].FQDN != "sbc.example.com" ||
		cfg.Network.Gateway != "203.0.113.1" || len(cfg.Network.DNSServers) != 2 {
		t.Errorf("network = %+v", cfg.Network)
	}
	if cfg.Admin.Listen != "10.0.0.5:8443" || cfg.Admin.AllowedNetworks[len(cfg.Admin.AllowedNetworks)-1] != "10.0.0.0/24" {
		t.Errorf("admin = %s %v", cfg.Admin.Listen, cfg.Admin.AllowedNetworks)
	}
	if len(cfg.Peers) != 2 || cfg.Peers[0].Type != "asterisk" || cfg.Peers[1].Address != "198.51.100.7:5060" || !cfg.Peers[1].Auth.Register {
		t.Errorf("peers = %+v", cfg.Peers)
	}
	if len(cfg.DialPlan.Rules) != 2 || cfg.DialPlan.Rules[0].Prefix != "9" {
		t.Errorf("dial plan = %+v", cfg.DialPlan.Rules)
	}
}

// term runs setup on a pseudo-terminal and answers its prompts.
type term struct {
	t    *testing.T
	ptmx *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	seen int
}

func (tm *term) expect(prompt string) {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second) // guards against a hang only
	for {
		tm.mu.Lock()
		s := tm.buf.String()[tm.seen:]
		if i := strings.Index(s, prompt); i >= 0 {
			tm.seen += i + len(prompt)
			tm.mu.Unlock()
			return
		}
		tm.mu.Unlock()
		if time.Now().After(deadline) {
			tm.t.Fatalf("no prompt %q; the screen shows:\n%s", prompt, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tm *term) answer(prompt, line string) {
	tm.t.Helper()
	tm.expect(prompt)
	if _, err := tm.ptmx.Write([]byte(line + "\n")); err != nil {
		tm.t.Fatal(err)
	}
}

func TestAddressDefaults(t *testing.T) {
	p := netip.MustParsePrefix
	lo := []HostAddr{{"lo", p("127.0.0.1/8")}, {"lo", p("::1/128")}}
	cases := []struct {
		name            string
		found           []HostAddr
		inside, outside string
	}{
		{"none", nil, "", ""},
		{"loopback only", lo, "", ""},
		{"one address: both", append(lo, HostAddr{"eth0", p("192.0.2.7/24")}), "192.0.2.7/24", "192.0.2.7"},
		{"two: first inside, second outside", append(lo, HostAddr{"eth0", p("10.1.2.3/16")}, HostAddr{"eth1", p("198.51.100.4/28")}), "10.1.2.3/16", "198.51.100.4"},
		{"link-local skipped, IPv4 first", []HostAddr{{"eth0", p("fe80::2/64")}, {"eth0", p("2001:db8::5/64")}, {"eth1", p("192.0.2.9/24")}}, "192.0.2.9/24", "2001:db8::5"},
		{"IPv6 only", []HostAddr{{"eth0", p("2001:db8::5/64")}}, "2001:db8::5/64", "2001:db8::5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, out := addressDefaults(tc.found)
			if in != tc.inside || out != tc.outside {
				t.Errorf("got %q %q, want %q %q", in, out, tc.inside, tc.outside)
			}
			if in != "" {
				if err := CheckAddrPrefix(in); err != nil {
					t.Errorf("the inside default is refused by its own question: %v", err)
				}
				if err := CheckIP(out); err != nil {
					t.Errorf("the outside default is refused by its own question: %v", err)
				}
			}
		})
	}
}

func TestInteractiveOnPTY(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	tm := &term{t: t, ptmx: ptmx}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			tm.mu.Lock()
			tm.buf.Write(b[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	dir := filepath.Join(t.TempDir(), "data")
	backup := filepath.Join(t.TempDir(), "b.json")
	done := make(chan error, 1)
	go func() {
		// The machine's addresses are fixed so that the defaults offered
		// are known: loopback and link-local ones are not offered.
		addrs := func() ([]HostAddr, error) {
			return []HostAddr{
				{"lo", netip.MustParsePrefix("127.0.0.1/8")}, {"lo", netip.MustParsePrefix("::1/128")},
				{"eth0", netip.MustParsePrefix("fe80::1/64")}, {"eth0", netip.MustParsePrefix("10.0.0.5/24")},
				{"eth1", netip.MustParsePrefix("203.0.113.10/24")},
			}, nil
		}
		done <- Run(context.Background(), Env{Stdin: tty, Stdout: tty, Data: dir, Addrs: addrs}, nil)
	}()

	tm.answer("Unit name [palisade]: ", "hq-sbc")
	tm.answer("Administrator password: ", "short")
	tm.expect("at least 8 characters")
	tm.answer("Administrator password: ", "s3cret-pass")
	tm.answer("Repeat the password: ", "s3cret-pass")
	tm.answer("Topology (standalone, one-armed) [standalone]: ", "")
	tm.expect("Addresses on this machine: 10.0.0.5/24 (eth0), 203.0.113.10/24 (eth1)\r\n")
	tm.answer("Inside address (IP or IP/PREFIX) [10.0.0.5/24]: ", "10.0.0.999")
	tm.expect("is not an IP address")
	tm.answer("Inside address (IP or IP/PREFIX) [10.0.0.5/24]: ", "") // the first address found
	tm.answer("Outside address [203.0.113.10]: ", "")                 // the second
	tm.answer("Outside FQDN (the name in the unit's certificate) (optional): ", "sbc.example.com")
	tm.answer("Default gateway (optional): ", "203.0.113.1")
	tm.answer("DNS servers (IP[:PORT],...) (optional): ", "9.9.9.9,1.1.1.1:53")
	tm.answer("PBX type (generic, cisco-cucm, dialogic-dmg, asterisk, freeswitch) [generic]: ", "asterisk")
	tm.answer("PBX address (HOST[:PORT]): ", "10.0.0.10:5060")
	tm.answer("Transport to the PBX (udp, tcp, tls) [udp]: ", "")
	tm.answer("Profile (generic, office365-um, teams-direct-routing) [generic]: ", "")
	tm.answer("Use a domain name (RFC 3263) rather than an address (y/n) [y]: ", "n")
	tm.answer("ITSP address (HOST[:PORT]): ", "198.51.100.7:5060")
	tm.answer("Transport to the ITSP (udp, tcp, tls) [udp]: ", "")
	tm.answer("Prefix that routes calls to the ITSP (optional): ", "9x")
	tm.expect("a prefix is 1-16 of")
	tm.answer("Prefix that routes calls to the ITSP (optional): ", "9")
	tm.answer("Does the ITSP require account authentication (y/n) [n]: ", "y")
	tm.answer("Account username: ", "acct")
	tm.answer("Account password: ", "pw")
	tm.answer("Register the account to the ITSP (y/n) [n]: ", "yes")
	tm.answer("Own certificate for the outside TLS listener [default]: ", "")
	tm.answer("Upload to a running unit and apply it there (y/n) [n]: ", "")
	tm.answer("Data directory ["+dir+"]: ", "")
	tm.answer("Also write a backup file to (optional): ", backup)
	tm.expect("ITSP account           acct, registered")
	tm.answer("Write this configuration (y/n) [y]: ", "")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("setup did not finish")
	}
	tm.mu.Lock()
	screen := tm.buf.String()
	tm.mu.Unlock()
	if strings.Contains(screen, "s3cret-pass") {
		t.Error("the password was echoed on the terminal")
	}
	cfg, _ := saved(t, dir)
	if cfg.Unit.Name != "hq-sbc" {
		t.Errorf("unit name %q", cfg.Unit.Name)
	}
	checkBuilt(t, cfg)
	if _, err := os.Stat(backup); err != nil {
		t.Error(err)
	}
}

// --upload logs in to a running unit's API, puts the configuration as
// preliminary, applies and confirms it.
func TestUpload(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	cur := config.Default()
	hash, _ := admin.HashPassword("unit-password")
	cur.Admin.PasswordHash = hash
	cur.Admin.Listen = "127.0.0.1:18443"
	if err := lifecycle.Bootstrap(ctx, st, cur, "test"); err != nil {
		t.Fatal(err)
	}
	ap := &applier{}
	mgr, err := lifecycle.New(st, ap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	auth := admin.NewAuth(st)
	auth.SetAdmin(cur.Admin)
	// The API refuses apply without a running unit; mark it running.
	srv := httptest.NewTLSServer(admin.NewHandler(&admin.Env{Store: st, Config: mgr, Auth: auth, Live: &admin.Live{}})) // a running unit: apply is allowed
	defer srv.Close()

	var out bytes.Buffer
	err = Run(ctx, Env{Stdin: strings.NewReader(""), Stdout: &out, Insecure: true},
		fullFlags("--upload", srv.URL, "--upload-password", "wrong"))
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: %v", err)
	}
	// The unit's generated password is found in its data directory.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "initial-admin-password"), []byte("unit-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Run(ctx, Env{Stdin: strings.NewReader(""), Stdout: &out, Insecure: true, Data: dir},
		fullFlags("--upload", srv.URL, "--certificate", "sbc")); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "saved as version 2") {
		t.Errorf("output: %s", out.String())
	}
	cfg, err := mgr.Saved(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hasCert(cfg, "sbc") {
		t.Errorf("certificate sbc not made on the unit: %+v", cfg.Certificates.Private)
	}
	if cfg.Peers[0].Type != "asterisk" || cfg.Admin.Listen != "127.0.0.1:18443" {
		t.Errorf("saved: peers %+v admin %s", cfg.Peers, cfg.Admin.Listen)
	}
	if ok, _ := admin.CheckPassword(cfg.Admin.PasswordHash, "s3cret-pass"); !ok {
		t.Error("new admin password not in the uploaded configuration")
	}
	if ap.n == 0 {
		t.Error("the unit never applied")
	}
	// The HTTPS certificate is checked unless --insecure.
	err = Run(ctx, Env{Stdin: strings.NewReader(""), Stdout: io.Discard}, fullFlags("--upload", srv.URL, "--upload-password", "unit-password"))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unverified certificate accepted: %v", err)
	}
}

type applier struct{ n int }

func (a *applier) Apply(context.Context, *config.Config) error { a.n++; return nil }

// Every profile and both topologies build a configuration that validates.
func TestBuildValidates(t *testing.T) {
	for _, topo := range Topologies {
		for _, itsp := range []string{"generic", "office365-um", "teams-direct-routing"} {
			t.Run(topo+"/"+itsp, func(t *testing.T) {
				a := Answers{AdminPassword: "s3cret-pass", Topology: topo, InsideAddress: "10.0.0.5",
					OutsideAddr: "203.0.113.10", OutsideFQDN: "sbc.example.com", PBXAddress: "10.0.0.10", ITSP: itsp}
				if itsp != "teams-direct-routing" {
					a.ITSPDomain = "trunk.example.net"
				}
				a.fillDefaults()
				a.fillTransportDefault()
				if err := a.Check(); err != nil {
					t.Fatal(err)
				}
				cfg, err := Build(a)
				if err != nil {
					t.Fatal(err)
				}
				if errs := cfg.Validate(); len(errs) > 0 {
					t.Fatalf("invalid: %v", errs)
				}
				if topo == "one-armed" && (len(cfg.Network.Interfaces) != 1 || cfg.Network.Interfaces[0].AdvertisedAddress != "203.0.113.10") {
					t.Errorf("one-armed interfaces = %+v", cfg.Network.Interfaces)
				}
				// SRTP towards Microsoft in both topologies, plain RTP to the PBX
				for _, p := range cfg.Peers {
					_, req := cfg.PeerMediaPolicy(p)
					if want := map[string]string{PBXPeer: "rtp", ITSPPeer: "srtp"}[p.Name]; itsp != "generic" && req != want {
						t.Errorf("%s media requirement %q, want %q", p.Name, req, want)
					}
				}
			})
		}
	}
}

// hasCert reports whether cfg names a private certificate with key material.
func hasCert(cfg *config.Config, name string) bool {
	for _, p := range cfg.Certificates.Private {
		if p.Name == name && p.Material != "" && p.Fingerprint != "" {
			return true
		}
	}
	return false
}

// SystemAddrs reads the real interfaces: the loopback address is among them
// with its prefix (and is then not offered).
func TestSystemAddrs(t *testing.T) {
	found, err := SystemAddrs()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(found, func(a HostAddr) bool { return a.Prefix == netip.MustParsePrefix("127.0.0.1/8") })
	if i < 0 {
		t.Fatalf("no 127.0.0.1/8 among %v", found)
	}
	if found[i].Interface == "" || slices.Contains(usableAddrs(found), found[i]) {
		t.Errorf("loopback %+v: no interface name, or offered", found[i])
	}
}
