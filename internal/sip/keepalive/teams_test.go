package keepalive

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/testkit/teamsfar"
)

// sipgoSender sends keepalives with a sipgo client over TLS: the part the
// B2BUA's engine plays in the unit.
type sipgoSender struct{ cli *sipgo.Client }

func (s sipgoSender) Options(ctx context.Context, req *sip.Request, t Target) (*sip.Response, error) {
	req.SetTransport("TLS")
	req.SetDestination(t.Addr.String())
	tx, err := s.cli.TransactionRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode >= 200 {
				return res, nil
			}
		case <-tx.Done():
			if tx.Err() != nil {
				return nil, tx.Err()
			}
			return nil, errors.New("transaction ended without an answer")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TestKeepaliveAgainstTeams runs the monitor against the Teams-like far
// end over mutual TLS: the OPTIONS it builds are accepted (200) only with
// the paired FQDN in Contact and X-MS-SBC; a wrong FQDN makes every target
// down under the 2xx rule; an unreachable first datacentre leaves sip2 and
// sip3, in that order.
// teamsLab is the Teams-like far end and a sipgo client of the SBC with
// its certificate, and a resolver and hops for the three datacentres.
type teamsLab struct {
	far  *teamsfar.Far
	cli  *sipgo.Client
	res  fakeResolver
	hops []routing.Hop
}

func newTeamsLab(t *testing.T) *teamsLab {
	t.Helper()
	root := pkitest.NewRoot(t, "Public Test Root G2", "Public Test CA")
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	serverOnly := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	mk := func(l pkitest.Leaf) tls.Certificate {
		k := pkitest.NewKey(t)
		c := root.Issue(t, k.Public(), l)
		return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}
	}
	far, err := teamsfar.Start(teamsfar.Options{SBCFQDN: "sbc.example.com", SBCAddr: "127.0.0.1:9",
		Cert: mk(pkitest.Leaf{CN: teamsfar.Names[0], DNS: teamsfar.Names, EKU: serverOnly}), Roots: roots,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(far.Close)
	own := mk(pkitest.Leaf{CN: "sbc.example.com", EKU: serverOnly})
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("sbc.example.com"),
		sipgo.WithUserAgenTLSConfig(&tls.Config{Certificates: []tls.Certificate{own}, RootCAs: roots, ServerName: teamsfar.Names[0]}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("sbc.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	res := fakeResolver{}
	var hops []routing.Hop
	for i, dc := range far.DCs {
		res[teamsfar.Names[i]] = []routing.Target{{Addr: netip.MustParseAddrPort(dc.Addr), Transport: "tls", ServerName: teamsfar.Names[i]}}
		hops = append(hops, routing.Hop{Peer: "teams", Host: teamsfar.Names[i], Port: 5061, Transport: "tls",
			Headers: map[string]string{"X-MS-SBC": "Palisade/SBC/test"}})
	}
	return &teamsLab{far: far, cli: cli, res: res, hops: hops}
}

func TestKeepaliveAgainstTeams(t *testing.T) {
	lab := newTeamsLab(t)
	far, cli, res, hops := lab.far, lab.cli, lab.res, lab.hops
	m := New(res, sipgoSender{cli}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(m.Close)
	apply := func(fqdn string) {
		m.Apply([]Peer{{Name: "teams", Hops: hops, Interval: time.Hour, Up: Up2xx, DownAfter: 1,
			Probe: Probe{LocalHost: fqdn, LocalPort: 5061, UserAgent: "Palisade/test"}}})
	}
	ctx := context.Background()

	apply("sbc.example.com")
	if err := m.CheckNow(ctx, "teams"); err != nil {
		t.Fatal(err)
	}
	ts, err := m.NextTargets(ctx, "teams")
	if err != nil || len(ts) != 3 {
		t.Fatalf("paired FQDN: %d targets, %v; states %+v", len(ts), err, m.States())
	}
	for _, st := range m.States() {
		if !st.Up || st.LastStatus != 200 {
			t.Fatalf("state %+v", st)
		}
	}

	// The Contact names another host: Teams answers 403, and under the
	// 2xx rule that is down (before, any answer counted as up).
	apply("10.1.2.3")
	m.CheckNow(ctx, "teams")
	if _, err := m.NextTargets(ctx, "teams"); !errors.Is(err, ErrAllDown) {
		t.Fatalf("wrong FQDN: %v; states %+v", err, m.States())
	}
	for _, st := range m.States() {
		if st.LastStatus != 403 {
			t.Fatalf("state %+v, want 403", st)
		}
	}

	// The first datacentre fails: sip2, sip3 remain, in that order.
	apply("sbc.example.com")
	far.DCs[0].SetDown(teamsfar.Unreachable)
	m.CheckNow(ctx, "teams")
	ts, err = m.NextTargets(ctx, "teams")
	if err != nil || len(ts) != 2 || ts[0].Hop.Host != teamsfar.Names[1] || ts[1].Hop.Host != teamsfar.Names[2] {
		t.Fatalf("first datacentre down: %+v %v", ts, err)
	}
	if n := far.Count(sip.OPTIONS); n < 5 {
		t.Fatalf("far end saw %d OPTIONS", n)
	}
}

// invite sends an INVITE with an SDP offer to target t and returns what a
// B2BUA engine would see.
func invite(ctx context.Context, cli *sipgo.Client, t Target, number string) Attempt {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: number, Host: t.Hop.Host, Port: int(t.Addr.Port())})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "sbc.example.com", Port: 5061}})
	req.AppendHeader(sip.NewHeader("X-MS-SBC", "Palisade/SBC/test"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"))
	req.SetTransport("TLS")
	req.SetDestination(t.Addr.String())
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // invite_timeout
	defer cancel()
	tx, err := cli.TransactionRequest(ctx, req)
	if err != nil {
		return Attempt{Err: err}
	}
	defer tx.Terminate()
	var a Attempt
	for {
		select {
		case r := <-tx.Responses():
			if r.StatusCode < 200 {
				a.Provisional = a.Provisional || r.StatusCode > 100
				continue
			}
			a.Status = r.StatusCode
			if h := r.GetHeader("Retry-After"); h != nil {
				a.RetryAfter = int(ParseRetryAfter(h.Value()) / time.Second)
			}
			return a
		case <-tx.Done():
			a.Err = tx.Err()
			return a
		case <-ctx.Done():
			a.Err = ctx.Err()
			return a
		}
	}
}

// TestWalkAgainstTeams: the engine's failover loop against the Teams-like
// far end. The first datacentre is unreachable, the second declines: one
// INVITE reaches Teams, none reaches sip3, and the dead datacentre is
// tried last by the next call (no keepalive: held, not refused). When every datacentre answers 503 with
// Retry-After, the following call gets ErrAllDown at once.
func TestWalkAgainstTeams(t *testing.T) {
	lab := newTeamsLab(t)
	m := New(lab.res, sipgoSender{lab.cli}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(m.Close)
	m.Apply([]Peer{{Name: "teams", Hops: lab.hops, Up: Up2xx}}) // no keepalive: calls alone decide
	lab.far.On("+4930600", teamsfar.Script{Action: teamsfar.Decline})
	lab.far.DCs[0].SetDown(teamsfar.Unreachable)
	ctx := context.Background()
	try := func(number string) func(context.Context, Target) Attempt {
		return func(ctx context.Context, t Target) Attempt { return invite(ctx, lab.cli, t, number) }
	}

	last, a, err := m.Walk(ctx, "teams", try("+4930600"))
	if err != nil || a.Status != 603 || last.Hop.Host != teamsfar.Names[1] {
		t.Fatalf("declined call: last %s, %+v, %v", last.Hop.Host, a, err)
	}
	if n := lab.far.Count(sip.INVITE); n != 1 {
		t.Fatalf("Teams saw %d INVITEs for one declined call", n)
	}
	ts, _ := m.NextTargets(ctx, "teams")
	if len(ts) != 3 || ts[0].Hop.Host != teamsfar.Names[1] || ts[2].Hop.Host != teamsfar.Names[0] {
		t.Fatalf("the dead datacentre is not tried last: %+v", ts)
	}

	for _, d := range lab.far.DCs[1:] {
		d.SetDown(teamsfar.Unavailable)
		d.RetryAfter.Store(120)
	}
	before := lab.far.Count(sip.INVITE)
	if _, _, err = m.Walk(ctx, "teams", try("+4930123")); err != nil || lab.far.Count(sip.INVITE) != before+2 {
		t.Fatalf("all unavailable: %v, %d INVITEs", err, lab.far.Count(sip.INVITE)-before)
	}
	// sip2 and sip3 are out for their Retry-After; the dead one, held
	// only (no keepalive), is still tried per call
	if ts, _ = m.NextTargets(ctx, "teams"); len(ts) != 1 || ts[0].Hop.Host != teamsfar.Names[0] {
		t.Fatalf("after Retry-After: %+v", ts)
	}
	lab.far.DCs[0].SetDown(teamsfar.Unavailable)
	lab.far.DCs[0].RetryAfter.Store(120)
	if _, a, err = m.Walk(ctx, "teams", try("+4930123")); err != nil || a.Status != 503 || a.RetryAfter != 120 {
		t.Fatalf("the first datacentre back, unavailable: %+v %v", a, err)
	}
	before = lab.far.Count(sip.INVITE)
	if _, _, err = m.Walk(ctx, "teams", try("+4930123")); !errors.Is(err, ErrAllDown) {
		t.Fatalf("every target out: %v", err)
	}
	if lab.far.Count(sip.INVITE) != before {
		t.Fatal("an INVITE was sent although every target is out")
	}
}
