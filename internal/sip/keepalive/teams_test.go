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
func TestKeepaliveAgainstTeams(t *testing.T) {
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
