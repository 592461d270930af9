package teamsfar

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
)

const sbcFQDN = "sbc.example.com"

var serverOnly = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}

// sbc is the test's stand-in for the SBC: a sipgo client with a
// certificate for sbcFQDN and a TLS server receiving Teams' requests.
type sbc struct {
	cli  *sipgo.Client
	addr string
	mu   sync.Mutex
	refs []*sip.Request
	got  chan struct{}
}

type pki struct {
	root      *pkitest.CA
	roots     *x509.CertPool
	far, self tls.Certificate
}

func newPKI(t *testing.T) *pki {
	root := pkitest.NewRoot(t, "Public Test Root G2", "Public Test CA")
	p := &pki{root: root, roots: x509.NewCertPool()}
	p.roots.AddCert(root.Cert)
	// Microsoft's proxy certificate and the SBC's: both serverAuth only,
	// as public CAs issue them from 2026.
	p.far = cert(t, root, pkitest.Leaf{CN: Names[0], DNS: append([]string(nil), Names...), EKU: serverOnly})
	p.self = cert(t, root, pkitest.Leaf{CN: sbcFQDN, EKU: serverOnly})
	return p
}

func cert(t *testing.T, ca *pkitest.CA, l pkitest.Leaf) tls.Certificate {
	key := pkitest.NewKey(t)
	c := ca.Issue(t, key.Public(), l)
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// startSBC runs the SBC side with own as its certificate (nil = none).
func startSBC(t *testing.T, p *pki, own *tls.Certificate) *sbc {
	s := &sbc{got: make(chan struct{}, 16)}
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no certificate")
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: p.roots, DNSName: Names[0],
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err
	}
	cfg := &tls.Config{InsecureSkipVerify: true, VerifyConnection: verify}
	if own != nil {
		cfg.Certificates = []tls.Certificate{*own}
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-sbc"), sipgo.WithUserAgentHostname(sbcFQDN), sipgo.WithUserAgenTLSConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	if s.cli, err = sipgo.NewClient(ua, sipgo.WithClientHostname(sbcFQDN)); err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		s.mu.Lock()
		s.refs = append(s.refs, req)
		s.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
		s.got <- struct{}{}
	})
	srvCfg := &tls.Config{Certificates: []tls.Certificate{p.self}, ClientAuth: tls.RequireAnyClientCert, VerifyConnection: verify}
	if own != nil {
		srvCfg.Certificates = []tls.Certificate{*own}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go srv.ServeTLS(ln)
	s.addr = ln.Addr().String()
	return s
}

func startFar(t *testing.T, p *pki, sbcAddr string) *Far {
	f, err := Start(Options{SBCFQDN: sbcFQDN, SBCAddr: sbcAddr, Cert: p.far, Roots: p.roots,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// req builds a request from the SBC to datacentre d.
type req struct {
	method  sip.RequestMethod
	user    string // Request-URI user ("" = none, as in OPTIONS)
	contact string // Contact host; "" = sbcFQDN
	noMSSBC bool
	sdp     bool
	extra   map[string]string
}

var offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 8 0 101\r\n" +
	"a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n" +
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"

func (r req) build(d *Datacenter) *sip.Request {
	host, port := d.Name, d.port()
	m := sip.NewRequest(r.method, sip.Uri{Scheme: "sip", User: r.user, Host: host, Port: port, UriParams: sip.HeaderParams{{K: "transport", V: "tls"}}})
	c := r.contact
	if c == "" {
		c = sbcFQDN
	}
	m.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: c, Port: 5061, UriParams: sip.HeaderParams{{K: "transport", V: "tls"}}}})
	if !r.noMSSBC {
		m.AppendHeader(sip.NewHeader("X-MS-SBC", "Palisade/SBC/test"))
	}
	for k, v := range r.extra {
		m.AppendHeader(sip.NewHeader(k, v))
	}
	if r.sdp {
		m.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		m.SetBody([]byte(offer))
	} else {
		m.SetBody(nil)
	}
	m.SetTransport("TLS")
	m.SetDestination(d.Addr)
	return m
}

// send sends r and returns the provisional and final responses (final nil
// with the error when none came).
func (s *sbc) send(t *testing.T, d *Datacenter, r req) ([]*sip.Response, *sip.Response, error) {
	t.Helper()
	return s.sendWithin(t, d, r, 40*time.Second)
}

// sendWithin is send with a bound; a short one only where no answer is
// the expected outcome.
func (s *sbc) sendWithin(t *testing.T, d *Datacenter, r req, within time.Duration) ([]*sip.Response, *sip.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	m := r.build(d)
	tx, err := s.cli.TransactionRequest(ctx, m)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Terminate()
	var prov []*sip.Response
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode < 200 {
				prov = append(prov, res)
				continue
			}
			if res.StatusCode < 300 && r.method == sip.INVITE {
				s.ack(t, d, m, res)
			}
			return prov, res, nil
		case <-tx.Done():
			return prov, nil, tx.Err()
		case <-ctx.Done():
			return prov, nil, ctx.Err()
		}
	}
}

func (s *sbc) ack(t *testing.T, d *Datacenter, inv *sip.Request, ok *sip.Response) {
	t.Helper()
	ack := sip.NewRequest(sip.ACK, ok.Contact().Address)
	ack.AppendHeader(sip.HeaderClone(inv.From()))
	ack.AppendHeader(sip.HeaderClone(ok.To()))
	cid := sip.CallIDHeader(inv.CallID().Value())
	ack.AppendHeader(&cid)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	ack.SetBody(nil)
	ack.SetTransport("TLS")
	ack.SetDestination(d.Addr)
	if err := s.cli.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
}

func TestOptions(t *testing.T) {
	p := newPKI(t)
	s := startSBC(t, p, &p.self)
	f := startFar(t, p, s.addr)
	d := f.DCs[0]
	_, res, err := s.send(t, d, req{method: sip.OPTIONS})
	if err != nil || res.StatusCode != 200 || !strings.Contains(res.GetHeader("Allow").Value(), "REFER") {
		t.Fatalf("OPTIONS from the paired FQDN: %v %v", res, err)
	}
	for _, tc := range []struct {
		name   string
		r      req
		reason string
	}{
		{"Contact not the SBC's FQDN", req{method: sip.OPTIONS, contact: "10.0.0.1"}, "not a paired SBC"},
		{"X-MS-SBC missing", req{method: sip.OPTIONS, noMSSBC: true}, "X-MS-SBC"},
	} {
		_, res, err := s.send(t, d, tc.r)
		if err != nil || res.StatusCode != 403 || !strings.Contains(res.Reason, tc.reason) {
			t.Errorf("%s: %v %v, want 403 %s", tc.name, res, err, tc.reason)
		}
	}
}

func TestInviteRules(t *testing.T) {
	p := newPKI(t)
	s := startSBC(t, p, &p.self)
	f := startFar(t, p, s.addr)
	d := f.DCs[0]
	for _, tc := range []struct {
		name string
		r    req
		want int
	}{
		{"answered", req{method: sip.INVITE, user: "+4930123", sdp: true}, 200},
		{"delayed offer", req{method: sip.INVITE, user: "+4930123"}, 488},
		{"number without +", req{method: sip.INVITE, user: "4930123", sdp: true}, 404},
		{"wrong Contact", req{method: sip.INVITE, user: "+4930123", sdp: true, contact: "pbx.internal"}, 403},
		{"no X-MS-SBC", req{method: sip.INVITE, user: "+4930123", sdp: true, noMSSBC: true}, 403},
		{"Replaces", req{method: sip.INVITE, user: "+4930123", sdp: true, extra: map[string]string{"Replaces": "abc;to-tag=1;from-tag=2"}}, 403},
	} {
		_, res, err := s.send(t, d, tc.r)
		if err != nil || res.StatusCode != tc.want {
			t.Errorf("%s: %v %v, want %d", tc.name, res, err, tc.want)
			continue
		}
		if tc.want == 200 && (res.ContentType() == nil || !strings.Contains(string(res.Body()), "RTP/SAVP 8 101") || !strings.Contains(string(res.Body()), "a=crypto:1 AES_CM_128_HMAC_SHA1_80")) {
			t.Errorf("answer:\n%s", res.Body())
		}
	}
}

func TestDeclineAndFork(t *testing.T) {
	p := newPKI(t)
	s := startSBC(t, p, &p.self)
	f := startFar(t, p, s.addr)
	f.On("+4930600", Script{Action: Decline})
	f.On("+4930700", Script{Action: Fork})
	_, res, err := s.send(t, f.DCs[0], req{method: sip.INVITE, user: "+4930600", sdp: true})
	if err != nil || res.StatusCode != 603 {
		t.Fatalf("declined call: %v %v", res, err)
	}
	if n := f.Count(sip.INVITE); n != 1 {
		t.Fatalf("%d INVITEs recorded", n)
	}
	_, res, err = s.send(t, f.DCs[0], req{method: sip.INVITE, user: "+4930700", sdp: true})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("forked call: %v %v", res, err)
	}
	// Wire order, from the far end's record (sipgo may hand the client a
	// 180 after the 200): two 180s of two early dialogs, then the 200 of
	// the first.
	rec, err := f.Wait(context.Background(), func(r Request) bool { return r.Req.Recipient.User == "+4930700" })
	if err != nil {
		t.Fatal(err)
	}
	var codes []int
	tags := map[string]bool{}
	for _, r := range rec.Sent {
		codes = append(codes, r.StatusCode)
		tag, _ := r.To().Params.Get("tag")
		tags[tag] = true
	}
	first, _ := rec.Sent[0].To().Params.Get("tag")
	final, _ := res.To().Params.Get("tag")
	if fmt.Sprint(codes) != "[180 180 200]" || len(tags) != 2 || final != first {
		t.Fatalf("forked answers %v, tags %v, 200 tag %s (first 180 %s)", codes, tags, final, first)
	}
}

func TestDatacenterDown(t *testing.T) {
	p := newPKI(t)
	s := startSBC(t, p, &p.self)
	f := startFar(t, p, s.addr)
	f.DCs[0].SetDown(Unreachable)
	if _, res, err := s.send(t, f.DCs[0], req{method: sip.OPTIONS}); err == nil {
		t.Fatalf("unreachable datacentre answered %v", res)
	}
	if _, res, err := s.send(t, f.DCs[1], req{method: sip.OPTIONS}); err != nil || res.StatusCode != 200 {
		t.Fatalf("second datacentre: %v %v", res, err)
	}
	f.DCs[2].SetDown(Unavailable)
	f.DCs[2].RetryAfter.Store(120)
	_, res, err := s.send(t, f.DCs[2], req{method: sip.INVITE, user: "+4930123", sdp: true})
	if err != nil || res.StatusCode != 503 || res.GetHeader("Retry-After") == nil || res.GetHeader("Retry-After").Value() != "120" {
		t.Fatalf("unavailable datacentre: %v %v", res, err)
	}
	f.DCs[0].SetDown(Up)
	if _, res, err := s.send(t, f.DCs[0], req{method: sip.OPTIONS}); err != nil || res.StatusCode != 200 {
		t.Fatalf("restored datacentre: %v %v", res, err)
	}
	// a silent datacentre sends nothing back, not even 100 Trying, over
	// the connection it keeps
	f.DCs[1].SetDown(Silent)
	prov, res, err := s.sendWithin(t, f.DCs[1], req{method: sip.INVITE, user: "+4930123", sdp: true}, 2*time.Second)
	if res != nil || len(prov) != 0 || err == nil {
		t.Fatalf("silent datacentre answered %v %v", prov, res)
	}
	if n := f.DCs[1].Swallowed.Load(); n != 1 {
		t.Fatalf("silent datacentre counted %d INVITEs, want 1", n)
	}
}

func TestTransferRefer(t *testing.T) {
	p := newPKI(t)
	s := startSBC(t, p, &p.self)
	f := startFar(t, p, s.addr)
	f.On("+4930800", Script{Action: Transfer, ReferTo: "+4930900", MRI: "8:orgid:6f2a", Tenant: "tenant-1"})
	_, res, err := s.send(t, f.DCs[1], req{method: sip.INVITE, user: "+4930800", sdp: true})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("call: %v %v", res, err)
	}
	select {
	case <-s.got:
	case <-time.After(60 * time.Second):
		t.Fatal("no REFER reached the SBC")
	}
	s.mu.Lock()
	ref := s.refs[0]
	s.mu.Unlock()
	rt := ref.GetHeader("Refer-To").Value()
	for _, want := range []string{"sip:+4930900@sip.pstnhub.microsoft.com", "x-m=8:orgid:6f2a", "x-t=tenant-1", "user=phone"} {
		if !strings.Contains(rt, want) {
			t.Errorf("Refer-To %q lacks %q", rt, want)
		}
	}
	if ref.CallID().Value() != res.CallID().Value() {
		t.Error("REFER outside the call's dialog")
	}
	// The REFER's answer is recorded.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r, err := f.Wait(ctx, func(r Request) bool { return r.Req.Method == sip.REFER }); err != nil || r.Status != 202 {
		t.Fatalf("REFER outcome: %+v %v", r, err)
	}
}

// TestMutualTLS: an SBC without a certificate, or with one for another
// FQDN, cannot connect.
func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	other := cert(t, p.root, pkitest.Leaf{CN: "other.example.com", EKU: serverOnly})
	for name, own := range map[string]*tls.Certificate{"no certificate": nil, "another FQDN": &other} {
		s := startSBC(t, p, own)
		f := startFar(t, p, s.addr)
		// No answer is the expected outcome: a short wait suffices, and
		// the count below proves nothing got through.
		if _, res, err := s.sendWithin(t, f.DCs[0], req{method: sip.OPTIONS}, 3*time.Second); err == nil {
			t.Errorf("%s: answered %v", name, res)
		}
		if n := f.Count(sip.OPTIONS); n != 0 {
			t.Errorf("%s: %d OPTIONS got through", name, n)
		}
	}
}
