package registrar

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
	dto "github.com/prometheus/client_model/go"
)

// clock is a settable time for expiry and lockout tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testConfig() *config.Config {
	cfg := config.Default()
	cfg.Registrar = config.Registrar{
		Enabled: true, Domains: []string{"example.com", "other.example"},
		Users:      []config.RegistrarUser{{Username: "alice", Password: "wonderland"}, {Username: "bob", Password: "builder"}},
		MinExpires: 10, MaxExpires: 120,
	}
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}}
	cfg.Routing.StaticRegistrations = []config.StaticRegistration{{User: "fax", ForwardTo: "sip:fax@192.0.2.7:5070", Transport: "tcp"}}
	return cfg
}

// newRegistrar applies testConfig to a registrar over st with a fake clock.
func newRegistrar(t *testing.T, st store.Store, clk *clock) *Registrar {
	t.Helper()
	return newRegistrarReporting(t, st, clk, nil)
}

// newRegistrarReporting is newRegistrar reporting wrong passwords to failures.
func newRegistrarReporting(t *testing.T, st store.Store, clk *clock, failures AuthFailures) *Registrar {
	t.Helper()
	r := New(st, nil, failures)
	r.now = clk.Now
	if err := r.Apply(context.Background(), testConfig()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// serve runs a sipgo UAS on 127.0.0.1 UDP that hands REGISTER to r.
func serve(t *testing.T, r *Registrar) string {
	t.Helper()
	return siptest.UDPServer(t, "registrar-test", "127.0.0.1", func(srv *sipgo.Server) {
		srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
			if !r.Serve(req, tx, "inside") {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 404, "Not Ours", nil))
			}
		})
	})
}

// phone is a sipgo UAC registering over UDP.
type phone struct {
	t      *testing.T
	cli    *sipgo.Client
	srv    string
	user   string
	pw     string
	domain string
	port   int
	callID string
	cseq   uint32
	auth   *digest.Client
	// alg, when set, keeps only the challenges of that algorithm.
	alg string
	// last is the contacts and expires of the last REGISTER built.
	last [2]any
	// transport the REGISTERs go over ("" = UDP).
	transport string
}

func newPhone(t *testing.T, srv, user, pw string) *phone {
	t.Helper()
	cli, port := siptest.UDPClient(t, "phone-"+user, "127.0.0.1")
	return &phone{t: t, cli: cli, srv: srv, user: user, pw: pw, domain: "example.com", port: port,
		callID: fmt.Sprintf("reg-%s-%d", user, time.Now().UnixNano()), cseq: 1, auth: digest.NewClient()}
}

// contact is the phone's own contact with optional parameters (";q=0.5").
func (p *phone) contact(params string) string {
	return fmt.Sprintf("<sip:%s@127.0.0.1:%d>%s", p.user, p.port, params)
}

func (p *phone) build(contacts []string, expires string, extra ...sip.Header) *sip.Request {
	p.last = [2]any{contacts, expires}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: p.domain})
	req.AppendHeader(sip.NewHeader("From", fmt.Sprintf("<sip:%s@%s>;tag=%s", p.user, p.domain, "t"+p.callID[:8])))
	req.AppendHeader(sip.NewHeader("To", fmt.Sprintf("<sip:%s@%s>", p.user, p.domain)))
	req.AppendHeader(sip.NewHeader("Call-ID", p.callID))
	req.AppendHeader(sip.NewHeader("User-Agent", "phone-"+p.user))
	req.AppendHeader(sip.NewHeader("CSeq", fmt.Sprintf("%d REGISTER", p.cseq)))
	p.cseq++
	for _, c := range contacts {
		req.AppendHeader(sip.NewHeader("Contact", c))
	}
	if expires != "" {
		req.AppendHeader(sip.NewHeader("Expires", expires))
	}
	for _, h := range extra {
		req.AppendHeader(h)
	}
	req.SetDestination(p.srv)
	return reparse(p.t, req)
}

// reparse makes the request look like one from the wire (typed headers).
func reparse(t *testing.T, req *sip.Request) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(req.String()))
	if err != nil {
		t.Fatalf("test request does not parse: %v\n%s", err, req)
	}
	out := msg.(*sip.Request)
	out.SetDestination(req.Destination())
	return out
}

func (p *phone) do(req *sip.Request) *sip.Response {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if p.transport != "" {
		req.SetTransport(strings.ToUpper(p.transport))
	}
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		p.t.Fatalf("REGISTER: %v", err)
	}
	return res
}

// register sends a REGISTER, answers a 401 with the phone's password and
// returns the final answer.
func (p *phone) register(contacts []string, expires string) *sip.Response {
	p.t.Helper()
	res := p.do(p.build(contacts, expires))
	if res.StatusCode != 401 {
		return res
	}
	return p.answer(res)
}

// answer answers the 401 res to the phone's last REGISTER (with p.alg's
// challenge when set).
func (p *phone) answer(res *sip.Response) *sip.Response {
	p.t.Helper()
	if p.alg != "" {
		keep := sip.NewResponse(401, "Unauthorized")
		for _, h := range res.GetHeaders("WWW-Authenticate") {
			if strings.Contains(h.Value(), "algorithm="+p.alg) {
				keep.AppendHeader(sip.NewHeader("WWW-Authenticate", h.Value()))
			}
		}
		res = keep
	}
	req := p.build(p.last[0].([]string), p.last[1].(string))
	if err := p.auth.Authorize(req, res, digest.Credentials{Username: p.user, Password: p.pw}); err != nil {
		p.t.Fatal(err)
	}
	return p.do(reparse(p.t, req))
}

// contactExpires returns the expires parameter of each Contact of res.
func contactExpires(t *testing.T, res *sip.Response) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, h := range res.GetHeaders("Contact") {
		c := h.(*sip.ContactHeader)
		out[c.Address.String()], _ = c.Params.Get("expires")
	}
	return out
}

func TestChallengeAndRegister(t *testing.T) {
	for _, alg := range []string{"MD5", "SHA-256"} {
		t.Run(alg, func(t *testing.T) {
			clk := &clock{t: time.Now()}
			r := newRegistrar(t, store.NewMemory(), clk)
			p := newPhone(t, serve(t, r), "alice", "wonderland")
			p.alg = alg
			// the challenge itself
			res := p.do(p.build([]string{p.contact("")}, "60"))
			if res.StatusCode != 401 {
				t.Fatalf("first REGISTER: %d", res.StatusCode)
			}
			chal := res.GetHeaders("WWW-Authenticate")
			if len(chal) != 2 || !strings.Contains(chal[0].Value(), "algorithm=SHA-256") ||
				!strings.Contains(chal[1].Value(), "algorithm=MD5") || !strings.Contains(chal[0].Value(), `qop="auth"`) ||
				!strings.Contains(chal[0].Value(), `realm="example.com"`) {
				t.Fatalf("challenges: %v", chal)
			}
			// answer this challenge: registering again without an answer
			// would mean "cannot do SHA-256" (TestMD5Fallback)
			res = p.answer(res)
			if res.StatusCode != 200 {
				t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
			}
			exp := contactExpires(t, res)
			if len(exp) != 1 || exp[fmt.Sprintf("sip:alice@127.0.0.1:%d", p.port)] != "60" {
				t.Fatalf("contacts in 200: %v", exp)
			}
			hops := r.Lookup("alice", "example.com")
			if len(hops) != 1 || hops[0].Host != "127.0.0.1" || hops[0].Port != p.port || hops[0].User != "alice" ||
				hops[0].Transport != "udp" || hops[0].Interface != "inside" || hops[0].Step != "registrar" {
				t.Fatalf("lookup: %+v", hops)
			}
			// the unit's own address finds the user in its domains
			if got := r.Lookup("alice", "127.0.0.1"); len(got) != 1 {
				t.Fatalf("lookup by unit address: %+v", got)
			}
			if got := r.Lookup("alice", "elsewhere.example"); len(got) != 0 {
				t.Fatalf("lookup in a foreign domain: %+v", got)
			}
			if got := r.Lookup("bob", "example.com"); len(got) != 0 {
				t.Fatalf("bob is not registered: %+v", got)
			}
		})
	}
}

func TestWrongPasswordLockout(t *testing.T) {
	clk := &clock{t: time.Now()}
	failed := &failureLog{}
	r := newRegistrarReporting(t, store.NewMemory(), clk, failed)
	srv := serve(t, r)
	locksBefore := counterValue(lockouts)
	wrongBefore := counterValue(authFailures.WithLabelValues("wrong_password"))
	bad := newPhone(t, srv, "alice", "guess")
	for i := 1; i < failsPerUser; i++ {
		if res := bad.register([]string{bad.contact("")}, "60"); res.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d", i, res.StatusCode)
		}
	}
	if res := bad.register([]string{bad.contact("")}, "60"); res.StatusCode != 403 {
		t.Fatalf("wrong password %d: %d, want 403", failsPerUser, res.StatusCode)
	}
	if got := counterValue(lockouts) - locksBefore; got != 1 {
		t.Fatalf("lockouts counted %v, want 1", got)
	}
	if got := counterValue(authFailures.WithLabelValues("wrong_password")) - wrongBefore; got != failsPerUser {
		t.Fatalf("wrong passwords counted %v, want %d", got, failsPerUser)
	}
	// each one was reported, with the phone's address, to the guard's side
	if got := failed.sources(); len(got) != failsPerUser || got[0] != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("failures reported %v, want %d from 127.0.0.1", got, failsPerUser)
	}
	// now even the right password is refused from this source
	good := newPhone(t, srv, "alice", "wonderland")
	if res := good.register([]string{good.contact("")}, "60"); res.StatusCode != 403 {
		t.Fatalf("right password while locked out: %d", res.StatusCode)
	}
	// another user from the same source is not locked
	bob := newPhone(t, srv, "bob", "builder")
	if res := bob.register([]string{bob.contact("")}, "60"); res.StatusCode != 200 {
		t.Fatalf("bob: %d", res.StatusCode)
	}
	// unknown users look like wrong passwords
	ghost := newPhone(t, srv, "ghost", "x")
	if res := ghost.register([]string{ghost.contact("")}, "60"); res.StatusCode != 401 {
		t.Fatalf("unknown user: %d", res.StatusCode)
	}
	clk.Add(lockoutDuration + time.Second)
	if res := good.register([]string{good.contact("")}, "60"); res.StatusCode != 200 {
		t.Fatalf("after the lockout: %d", res.StatusCode)
	}
	if len(r.Lookup("alice", "example.com")) != 1 {
		t.Fatal("alice not registered after the lockout")
	}
}

func TestExpires(t *testing.T) {
	clk := &clock{t: time.Now()}
	st := store.NewMemory()
	r := newRegistrar(t, st, clk)
	p := newPhone(t, serve(t, r), "alice", "wonderland")
	tests := []struct {
		name     string
		contact  string
		expires  string
		code     int
		granted  string
		minHeadr string
	}{
		{"below min", p.contact(""), "5", 423, "", "10"},
		{"below min in contact", p.contact(";expires=3"), "60", 423, "", "10"},
		{"not a number", p.contact(""), "soon", 400, "", ""},
		{"negative", p.contact(""), "-5", 400, "", ""},
		{"absurdly large", p.contact(""), "99999999999999999999999", 200, "120", ""},
		{"above max", p.contact(""), "100000", 200, "120", ""},
		{"contact param wins", p.contact(";expires=30"), "100", 200, "30", ""},
		{"no expiry given", p.contact(""), "", 200, "120", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := p.register([]string{tt.contact}, tt.expires)
			if res.StatusCode != tt.code {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
			if tt.minHeadr != "" {
				if h := res.GetHeader("Min-Expires"); h == nil || h.Value() != tt.minHeadr {
					t.Fatalf("Min-Expires: %v", h)
				}
			}
			if tt.granted != "" {
				for _, v := range contactExpires(t, res) {
					if v != tt.granted {
						t.Fatalf("granted %s, want %s", v, tt.granted)
					}
				}
			}
		})
	}
	if len(r.Lookup("alice", "example.com")) != 1 {
		t.Fatal("not registered")
	}
	clk.Add(121 * time.Second)
	if hops := r.Lookup("alice", "example.com"); len(hops) != 0 {
		t.Fatalf("expired binding still used: %+v", hops)
	}
	if _, err := st.Get(context.Background(), "registrar/alice@example.com"); err != nil {
		t.Fatalf("binding should still be stored until pruned: %v", err)
	}
	r.Prune(context.Background())
	if _, err := st.Get(context.Background(), "registrar/alice@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired binding not pruned from the store: %v", err)
	}
}

func TestContactsQAndUnregister(t *testing.T) {
	clk := &clock{t: time.Now()}
	st := store.NewMemory()
	r := newRegistrar(t, st, clk)
	p := newPhone(t, serve(t, r), "alice", "wonderland")
	desk := "<sip:alice@127.0.0.1:7001>;q=0.5"
	mobile := "<sip:alice@127.0.0.1:7002>;q=0.9"
	soft := "<sip:alice@127.0.0.1:7003>" // no q = 1.0
	if res := p.register([]string{desk, mobile + ", " + soft}, "60"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	ports := func() []int {
		var out []int
		for _, h := range r.Lookup("alice", "example.com") {
			out = append(out, h.Port)
		}
		return out
	}
	if got := fmt.Sprint(ports()); got != "[7003 7002 7001]" {
		t.Fatalf("lookup order %s, want q order [7003 7002 7001]", got)
	}
	// fetch: no Contact lists the bindings
	res := p.register(nil, "")
	if res.StatusCode != 200 || len(contactExpires(t, res)) != 3 {
		t.Fatalf("fetch: %d %v", res.StatusCode, contactExpires(t, res))
	}
	var q string
	for _, h := range res.GetHeaders("Contact") {
		if c := h.(*sip.ContactHeader); c.Address.Port == 7001 {
			q, _ = c.Params.Get("q")
		}
	}
	if q != "0.5" {
		t.Fatalf("q of the desk phone in the 200: %q", q)
	}
	// one contact removed with expires=0
	if res := p.register([]string{"<sip:alice@127.0.0.1:7002>;expires=0"}, ""); res.StatusCode != 200 {
		t.Fatalf("remove one: %d", res.StatusCode)
	}
	if got := fmt.Sprint(ports()); got != "[7003 7001]" {
		t.Fatalf("after removing one: %s", got)
	}
	// bad requests
	for _, c := range [][]string{{"*"}, {"*", soft}} {
		if res := p.register(c, "60"); res.StatusCode != 400 {
			t.Fatalf("%v with Expires 60: %d", c, res.StatusCode)
		}
	}
	if res := p.register([]string{"<sip:alice@127.0.0.1:7004>;q=2"}, "60"); res.StatusCode != 400 {
		t.Fatalf("q=2: %d", res.StatusCode)
	}
	// Contact: * with Expires: 0 removes everything
	if res := p.register([]string{"*"}, "0"); res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 0 {
		t.Fatalf("un-REGISTER: %d %v", res.StatusCode, res.GetHeaders("Contact"))
	}
	if len(ports()) != 0 {
		t.Fatalf("bindings left: %v", ports())
	}
	if _, err := st.Get(context.Background(), "registrar/alice@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("store key left after un-REGISTER: %v", err)
	}
}

func TestOutOfOrderAndForeignAOR(t *testing.T) {
	clk := &clock{t: time.Now()}
	r := newRegistrar(t, store.NewMemory(), clk)
	srv := serve(t, r)
	p := newPhone(t, srv, "alice", "wonderland")
	if res := p.register([]string{p.contact("")}, "60"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	// the same Call-ID with a lower CSeq is an old request
	p.cseq = 1
	if res := p.register([]string{p.contact("")}, "60"); res.StatusCode != 500 {
		t.Fatalf("old CSeq: %d", res.StatusCode)
	}
	// bob's credentials for alice's address
	m := newPhone(t, srv, "alice", "builder")
	m.auth = digest.NewClient()
	req := m.build([]string{m.contact("")}, "60")
	res := m.do(req)
	req = m.build([]string{m.contact("")}, "60")
	if err := m.auth.Authorize(req, res, digest.Credentials{Username: "bob", Password: "builder"}); err != nil {
		t.Fatal(err)
	}
	if res := m.do(reparse(t, req)); res.StatusCode != 403 {
		t.Fatalf("REGISTER of alice as bob: %d", res.StatusCode)
	}
	// a domain that is not ours is not answered by the registrar
	o := newPhone(t, srv, "alice", "wonderland")
	o.domain = "elsewhere.example"
	if res := o.do(o.build([]string{o.contact("")}, "60")); res.StatusCode != 404 {
		t.Fatalf("foreign domain: %d", res.StatusCode)
	}
}

func TestRestartKeepsBindings(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Now()}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := New(st, nil, nil)
	r.now = clk.Now
	if err := r.Apply(context.Background(), testConfig()); err != nil {
		t.Fatal(err)
	}
	p := newPhone(t, serve(t, r), "alice", "wonderland")
	if res := p.register([]string{p.contact(";q=0.7")}, "100"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	// an apply keeps the bindings
	cfg := testConfig()
	cfg.Registrar.Users = append(cfg.Registrar.Users, config.RegistrarUser{Username: "carol", Password: "x"})
	if err := r.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(r.Lookup("alice", "example.com")) != 1 {
		t.Fatal("binding lost on apply")
	}
	r.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	r2 := newRegistrar(t, st2, clk)
	hops := r2.Lookup("alice", "example.com")
	if len(hops) != 1 || hops[0].Port != p.port {
		t.Fatalf("after restart: %+v", hops)
	}
	regs := r2.Registrations()
	if len(regs) != 1 || regs[0].AOR != "alice@example.com" || regs[0].Q != 0.7 || regs[0].ExpiresIn != 100 ||
		regs[0].UserAgent != "phone-alice" {
		t.Fatalf("status after restart: %+v", regs)
	}
	// a user removed from the configuration is no longer reached
	cfg = testConfig()
	cfg.Registrar.Users = cfg.Registrar.Users[1:]
	if err := r2.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if hops := r2.Lookup("alice", "example.com"); len(hops) != 0 {
		t.Fatalf("removed user still routed: %+v", hops)
	}
	// expired while the unit was down: gone at the next start
	clk.Add(101 * time.Second)
	r3 := newRegistrar(t, st2, clk)
	if regs := r3.Registrations(); len(regs) != 0 {
		t.Fatalf("expired binding loaded: %+v", regs)
	}
}

func TestNATAndStatic(t *testing.T) {
	clk := &clock{t: time.Now()}
	r := newRegistrar(t, store.NewMemory(), clk)
	p := newPhone(t, serve(t, r), "alice", "wonderland")
	// behind NAT: the Contact names a private address; the unit sends to
	// the address the REGISTER came from
	if res := p.register([]string{"<sip:alice@10.1.2.3:5060>"}, "60"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	hops := r.Lookup("alice", "example.com")
	if len(hops) != 1 || hops[0].Host != "127.0.0.1" || hops[0].Port != p.port {
		t.Fatalf("NAT hop: %+v", hops)
	}
	// static registrations: any host, after the registered contacts
	hops = r.Lookup("fax", "example.com")
	if len(hops) != 1 || hops[0].Host != "192.0.2.7" || hops[0].Port != 5070 || hops[0].Transport != "tcp" || hops[0].User != "fax" {
		t.Fatalf("static: %+v", hops)
	}
	if len(r.StaticLookup("fax")) != 1 || len(r.StaticLookup("alice")) != 0 {
		t.Fatal("StaticLookup")
	}
	src := r.StatusSource()
	v, err := src.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if regs := v.([]Registration); len(regs) != 1 || regs[0].Kind != "local" || regs[0].Contact != "sip:alice@10.1.2.3:5060" {
		t.Fatalf("status: %+v", v)
	}
	// disabled: REGISTER is not answered, lookups find only static ones
	cfg := testConfig()
	cfg.Registrar.Enabled = false
	if err := r.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(r.Lookup("alice", "example.com")) != 0 || len(r.Lookup("fax", "x")) != 1 {
		t.Fatal("lookups with the registrar disabled")
	}
	if res := p.do(p.build([]string{p.contact("")}, "60")); res.StatusCode != 404 {
		t.Fatalf("disabled registrar answered: %d", res.StatusCode)
	}
}

// TestMD5Fallback plays a phone that gives up on a 401 offering SHA-256
// (as libre 1.x does) and registers again: it is then offered MD5 only.
func TestMD5Fallback(t *testing.T) {
	clk := &clock{t: time.Now()}
	r := newRegistrar(t, store.NewMemory(), clk)
	srv := serve(t, r)
	p := newPhone(t, srv, "alice", "wonderland")
	algsOf := func(res *sip.Response) string {
		var out []string
		for _, h := range res.GetHeaders("WWW-Authenticate") {
			ch, err := digest.ParseChallenge(h.Value())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ch.Algorithm)
		}
		return strings.Join(out, ",")
	}
	if got := algsOf(p.do(p.build([]string{p.contact("")}, "60"))); got != "SHA-256,MD5" {
		t.Fatalf("first challenge offers %s", got)
	}
	// the phone could not answer and tries the same registration again
	if got := algsOf(p.do(p.build([]string{p.contact("")}, "60"))); got != "MD5" {
		t.Fatalf("second challenge offers %s, want MD5 only", got)
	}
	p.alg = "MD5"
	if res := p.register([]string{p.contact("")}, "60"); res.StatusCode != 200 {
		t.Fatalf("MD5 answer: %d", res.StatusCode)
	}
	// a phone that answers (a refresh without credentials, then the answer)
	// keeps being offered both
	b := newPhone(t, srv, "bob", "builder")
	for i := 0; i < 2; i++ {
		if res := b.register([]string{b.contact("")}, "60"); res.StatusCode != 200 {
			t.Fatalf("bob: %d", res.StatusCode)
		}
	}
	if got := algsOf(b.do(b.build([]string{b.contact("")}, "60"))); got != "SHA-256,MD5" {
		t.Fatalf("bob is offered %s", got)
	}
	// a day later alice is offered both again
	clk.Add(md5OnlyFor + time.Minute)
	p2 := newPhone(t, srv, "alice", "wonderland")
	if got := algsOf(p2.do(p2.build([]string{p2.contact("")}, "60"))); got != "SHA-256,MD5" {
		t.Fatalf("after a day alice is offered %s", got)
	}
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// failureLog records the sources of reported authentication failures.
type failureLog struct {
	mu   sync.Mutex
	srcs []netip.Addr
}

func (f *failureLog) AuthFailed(src netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.srcs = append(f.srcs, src)
}

func (f *failureLog) sources() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.Addr(nil), f.srcs...)
}
