package accounts

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	icdigest "github.com/icholy/digest"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// trunk is a Go UAS playing an ITSP registrar that challenges. It checks
// the digest answers with its own arithmetic (RFC 7616 §3.4.1), so the
// client is not checked against itself.
type trunk struct {
	t     *testing.T
	addr  string
	user  string
	pw    string
	realm string
	alg   string // MD5 | SHA-256 | both
	code  int    // 401 or 407
	grant int    // expires granted in the 200
	nonce string // kept for all challenges, so nc must count up

	mu      sync.Mutex
	failing bool // answer 503
	regs    []*sip.Request
	okRegs  []*sip.Request
	ncs     []string
	algs    []string
	minExp  int // answer 423 below this
}

func newTrunk(t *testing.T, alg string) *trunk {
	t.Helper()
	tr := &trunk{t: t, user: "acct", pw: "s3cret", realm: "itsp.example", alg: alg, code: 401, grant: 3600, nonce: "fixed-nonce-1"}
	tr.addr = siptest.UDPServer(t, "trunk", "127.0.0.1", func(srv *sipgo.Server) {
		srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) { _ = tx.Respond(tr.answer(req)) })
	})
	return tr
}

func (tr *trunk) answer(req *sip.Request) *sip.Response {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.regs = append(tr.regs, req)
	if tr.failing {
		return sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	}
	exp, _ := strconv.Atoi(req.GetHeader("Expires").Value())
	if tr.minExp > 0 && exp != 0 && exp < tr.minExp {
		res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(tr.minExp)))
		return res
	}
	authName, chalName := "Authorization", "WWW-Authenticate"
	if tr.code == 407 {
		authName, chalName = "Proxy-Authorization", "Proxy-Authenticate"
	}
	if h := req.GetHeader(authName); h != nil && tr.verify(req, h.Value()) {
		tr.okRegs = append(tr.okRegs, req)
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		c := req.Contact()
		ch := &sip.ContactHeader{Address: c.Address, Params: sip.NewParams()}
		ch.Params.Add("expires", strconv.Itoa(min(tr.grant, exp)))
		res.AppendHeader(ch)
		return res
	}
	res := sip.NewResponseFromRequest(req, tr.code, "Unauthorized", nil)
	for _, a := range []string{"SHA-256", "MD5"} {
		if tr.alg == a || tr.alg == "both" {
			res.AppendHeader(sip.NewHeader(chalName, fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=%s, qop="auth"`, tr.realm, tr.nonce, a)))
		}
	}
	return res
}

func (tr *trunk) verify(req *sip.Request, v string) bool {
	cred, err := icdigest.ParseCredentials(v)
	if err != nil {
		tr.t.Errorf("unparseable %s", v)
		return false
	}
	var h func() hash.Hash
	switch cred.Algorithm {
	case "MD5":
		h = md5.New
	case "SHA-256":
		h = sha256.New
	default:
		tr.t.Errorf("algorithm %q", cred.Algorithm)
		return false
	}
	hx := func(s string) string { x := h(); x.Write([]byte(s)); return hex.EncodeToString(x.Sum(nil)) }
	nc := fmt.Sprintf("%08x", cred.Nc)
	ha1 := hx(tr.user + ":" + tr.realm + ":" + tr.pw)
	ha2 := hx("REGISTER:" + cred.URI)
	want := hx(ha1 + ":" + cred.Nonce + ":" + nc + ":" + cred.Cnonce + ":auth:" + ha2)
	tr.ncs = append(tr.ncs, nc)
	tr.algs = append(tr.algs, cred.Algorithm)
	if cred.URI != req.Recipient.String() || cred.QOP != "auth" || cred.Username != tr.user {
		tr.t.Errorf("credentials %+v for %s", cred, req.Recipient.String())
	}
	return cred.Response == want
}

func (tr *trunk) snapshot() (regs, ok []*sip.Request, ncs, algs []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*sip.Request(nil), tr.regs...), append([]*sip.Request(nil), tr.okRegs...),
		append([]string(nil), tr.ncs...), append([]string(nil), tr.algs...)
}

// udpSender is the test's Sender: a sipgo client on 127.0.0.1 that sends
// everything to the trunk.
type udpSender struct {
	cli  *sipgo.Client
	port int
	dst  string
}

func newSender(t *testing.T, dst string) *udpSender {
	t.Helper()
	cli, port := siptest.UDPClient(t, "palisade-test", "127.0.0.1")
	return &udpSender{cli: cli, port: port, dst: dst}
}

func (s *udpSender) Contact(string) (sip.Uri, error) {
	return sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: s.port}, nil
}

func (s *udpSender) Do(ctx context.Context, _ string, req *sip.Request) (*sip.Response, error) {
	req.SetDestination(s.dst)
	return s.cli.Do(ctx, req)
}

func peerConfig(tr *trunk, pw string) *config.Config {
	cfg := config.Default()
	cfg.Peers = []config.Peer{{Name: "itsp", Kind: "itsp", Address: tr.addr, Transport: "udp",
		Auth: config.PeerAuth{Username: tr.user, Password: pw, Register: true, Expires: config.Duration(time.Hour)}}}
	return cfg
}

func newClient(t *testing.T, tr *trunk) *Client {
	t.Helper()
	c := New(newSender(t, tr.addr), nil)
	c.minBackoff, c.maxBackoff = 20*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds; the long deadline only catches a
// hang, it is not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func state(c *Client) State {
	if s := c.States(); len(s) == 1 {
		return s[0]
	}
	return State{}
}

func TestRegisterAnswersChallenge(t *testing.T) {
	for _, tc := range []struct{ offer, want string }{{"MD5", "MD5"}, {"SHA-256", "SHA-256"}, {"both", "SHA-256"}} {
		t.Run(tc.offer, func(t *testing.T) {
			tr := newTrunk(t, tc.offer)
			c := newClient(t, tr)
			if err := c.Apply(context.Background(), peerConfig(tr, tr.pw)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "registered", func() bool { return state(c).State == "registered" })
			regs, ok, _, algs := tr.snapshot()
			if len(regs) != 2 || len(ok) != 1 || algs[0] != tc.want {
				t.Fatalf("REGISTERs %d, accepted %d, algorithms %v", len(regs), len(ok), algs)
			}
			r := ok[0]
			if r.Contact().Address.User != "acct" || r.To().Address.String() != "sip:acct@127.0.0.1" ||
				r.Recipient.String() != "sip:127.0.0.1" || r.GetHeader("Expires").Value() != "3600" {
				t.Fatalf("REGISTER:\n%s", r)
			}
			if regs[0].CallID().Value() != r.CallID().Value() || r.CSeq().SeqNo != regs[0].CSeq().SeqNo+1 {
				t.Fatal("the answer to the challenge must keep the Call-ID and count the CSeq up")
			}
			st := state(c)
			if d := time.Until(st.Expires); d < 50*time.Minute || d > time.Hour {
				t.Fatalf("expires at %v", st.Expires)
			}
			regsStatus := c.Registrations()
			if len(regsStatus) != 1 || regsStatus[0].Kind != "trunk" || regsStatus[0].Peer != "itsp" || regsStatus[0].ExpiresIn < 3000 {
				t.Fatalf("status: %+v", regsStatus)
			}
		})
	}
}

func TestRefreshBeforeExpiry(t *testing.T) {
	tr := newTrunk(t, "SHA-256")
	tr.mu.Lock()
	tr.code = 407 // a proxy-style challenge
	tr.grant = 1  // one second: refreshed at 800 ms
	tr.mu.Unlock()
	c := newClient(t, tr)
	if err := c.Apply(context.Background(), peerConfig(tr, tr.pw)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three registrations", func() bool { _, ok, _, _ := tr.snapshot(); return len(ok) >= 3 })
	_, ok, ncs, _ := tr.snapshot()
	for i := 1; i < len(ok); i++ {
		if ok[i].CallID().Value() != ok[0].CallID().Value() || ok[i].CSeq().SeqNo <= ok[i-1].CSeq().SeqNo {
			t.Fatal("refreshes must keep the Call-ID and count the CSeq up")
		}
	}
	// the trunk keeps its nonce: the nonce count goes up
	if ncs[0] != "00000001" || ncs[1] != "00000002" || ncs[2] != "00000003" {
		t.Fatalf("nonce counts %v", ncs)
	}
}

func TestFailureBackoffRecovery(t *testing.T) {
	tr := newTrunk(t, "MD5")
	tr.mu.Lock()
	tr.failing = true
	tr.mu.Unlock()
	c := newClient(t, tr)
	if err := c.Apply(context.Background(), peerConfig(tr, tr.pw)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed state", func() bool { s := state(c); return s.State == "failed" && strings.Contains(s.LastError, "503") })
	waitFor(t, "retries", func() bool { regs, _, _, _ := tr.snapshot(); return len(regs) >= 4 })
	tr.mu.Lock()
	tr.failing = false
	tr.mu.Unlock()
	waitFor(t, "recovery", func() bool { return state(c).State == "registered" })
	if s := state(c); s.LastError != "" {
		t.Fatalf("error kept after recovery: %q", s.LastError)
	}
}

func TestWrongPasswordAnd423(t *testing.T) {
	tr := newTrunk(t, "MD5")
	c := newClient(t, tr)
	if err := c.Apply(context.Background(), peerConfig(tr, "wrong")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "refusal", func() bool { return strings.Contains(state(c).LastError, "refused the credentials") })

	// the right password after an apply; the trunk wants longer registrations
	tr.mu.Lock()
	tr.minExp = 7200
	tr.mu.Unlock()
	cfg := peerConfig(tr, tr.pw)
	if err := c.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "registered", func() bool { return state(c).State == "registered" })
	_, ok, _, _ := tr.snapshot()
	if got := ok[len(ok)-1].GetHeader("Expires").Value(); got != "7200" {
		t.Fatalf("Expires after 423: %s", got)
	}
	// removing the peer unregisters
	cfg.Peers = nil
	if err := c.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(c.States()) != 0 {
		t.Fatal("loop left after the peer was removed")
	}
	_, ok, _, _ = tr.snapshot()
	if got := ok[len(ok)-1].GetHeader("Expires").Value(); got != "0" {
		t.Fatalf("last REGISTER has Expires %s, want 0 (unregister)", got)
	}
}
