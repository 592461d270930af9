package b2bua

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
)

func labels(msgs []observe.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Direction+" "+m.Label)
	}
	return out
}

// testCallUnit is a unit whose trunk "itsp" is at far (127.0.0.3) and
// whose PBX "pbx" is the source of test calls.
func testCallUnit(t *testing.T, far string) *testUnit {
	return newTestUnit(t, nil, nil, func(c *config.Config) {
		c.Peers = []config.Peer{
			{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "127.0.0.1:5", Transport: "udp"},
			{Name: "itsp", Kind: "itsp", Interface: "outside", Address: far, Transport: "udp"},
		}
	})
}

// TestTestCallSipp places test calls from the unit to sipp as the far end:
// one that answers, one that is busy, one that rings until the CANCEL.
func TestTestCallSipp(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("install Debian package sip-tester (sipp)")
	}
	for _, tc := range []struct {
		scenario, result string
		code             int
		want             []string
	}{
		{"uas.xml", TestAnswered, 200, []string{"out INVITE", "in 180 Ringing", "in 200 OK", "out ACK", "out BYE", "in 200 OK"}},
		{"uas_busy.xml", TestRejected, 486, []string{"out INVITE", "in 486 Busy Here"}},
		{"uas_ring.xml", TestTimedOut, 480, []string{"out INVITE", "in 100 Trying", "in 180 Ringing", "out CANCEL", "in 200 OK", "in 487 Request Terminated"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			port := startSippUASScenario(t, tc.scenario, "127.0.0.3", "udp")
			u := testCallUnit(t, "127.0.0.3:"+strconv.Itoa(port))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := u.TestCall(ctx, TestCall{Number: "4930123", Hold: 300 * time.Millisecond, Ring: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			got := labels(res.Messages)
			t.Logf("%s %d %s: %v", res.Result, res.Code, res.Reason, got)
			if res.Result != tc.result || res.Code != tc.code || res.Source != "pbx" || res.Peer != "itsp" {
				t.Fatalf("result %s %d source %q peer %q, want %s %d from pbx to itsp", res.Result, res.Code, res.Source, res.Peer, tc.result, tc.code)
			}
			if res.Target != "127.0.0.3:"+strconv.Itoa(port) {
				t.Errorf("target %s", res.Target)
			}
			// the CANCEL's 200 and the 487 are read by two goroutines:
			// their order in the ladder may differ
			if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tc.want))) || got[0] != "out INVITE" {
				t.Errorf("ladder %v, want %v", got, tc.want)
			}
			for _, m := range res.Messages {
				if m.Leg != "outside" || m.SIPCallID != res.ID {
					t.Errorf("message %s on leg %q Call-ID %q", m.Label, m.Leg, m.SIPCallID)
				}
			}
			if tc.result == TestAnswered && res.Held < 300*time.Millisecond {
				t.Errorf("held %s", res.Held)
			}
		})
	}
}

// TestTestCallSilent: a far end that reads and never answers is given up
// after sip.invite_timeout as timed out.
func TestTestCallSilent(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	u := newTestUnit(t, nil, nil, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(500 * time.Millisecond)
		c.Peers = []config.Peer{{Name: "itsp", Kind: "itsp", Interface: "outside", Address: pc.LocalAddr().String(), Transport: "udp"}}
	})
	res, err := u.TestCall(ctxT(t), TestCall{URI: "sip:100@" + pc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != TestTimedOut || res.Code != 408 || res.Peer != "itsp" || res.Source != "inside" {
		t.Fatalf("%+v", *res)
	}
	if got := labels(res.Messages); !slices.Equal(got, []string{"out INVITE"}) {
		t.Errorf("ladder %v", got)
	}
}

// TestTestCallBadInput: what cannot be placed is an error, a number
// without route a failed result.
func TestTestCallBadInput(t *testing.T) {
	u := newTestUnit(t, nil, nil, func(c *config.Config) { c.Peers = nil })
	for _, tc := range []TestCall{{}, {Number: "1", URI: "sip:a@b"}, {URI: "http://x"}, {URI: "sip:"}, {Number: "1", Source: "nobody"}} {
		if _, err := u.TestCall(ctxT(t), tc); err == nil {
			t.Errorf("%+v: no error", tc)
		}
	}
	res, err := u.TestCall(ctxT(t), TestCall{Number: "1"})
	if err != nil || res.Result != TestFailed || res.Code < 400 || len(res.Messages) != 0 || res.Source != "inside" {
		t.Errorf("no route: %+v %v", res, err)
	}
	t.Logf("no route: %d %s", res.Code, res.Reason)
}

// TestPingURI pings sipp by URI and a configured peer by name; the ladder
// is the OPTIONS and its answer.
func TestPingURI(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("install Debian package sip-tester (sipp)")
	}
	port := startSippUASScenario(t, "uas_options.xml", "127.0.0.3", "udp")
	addr := "127.0.0.3:" + strconv.Itoa(port)
	u := testCallUnit(t, addr)
	for _, dest := range []string{"sip:" + addr + ";transport=udp", "itsp"} {
		out, err := u.Ping(ctxT(t), dest)
		if err != nil {
			t.Fatal(err)
		}
		if out.Err != nil || out.Response == nil || out.Response.StatusCode != 200 || out.Peer != "itsp" || out.Target != addr {
			t.Fatalf("%s: %+v", dest, out)
		}
		if got := labels(out.Messages); !slices.Equal(got, []string{"out OPTIONS", "in 200 OK"}) {
			t.Errorf("%s: ladder %v", dest, got)
		}
	}
	if _, err := u.Ping(ctxT(t), "http://x"); err == nil {
		t.Error("bad URI pinged")
	}
}

// TestPingURITLS pings a TLS far end that is no configured peer by its bare
// URI (;transport=tls): the OPTIONS goes over TLS from the outside interface
// and the ladder shows it in cleartext.
func TestPingURITLS(t *testing.T) {
	p := newTestPKI(t)
	far, accepts := newTLSPeer(t, p, "127.0.0.3")
	u := newTestUnitWith(t, nil, nil, Deps{TLS: p}, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls"})
	})
	out, err := u.Ping(ctxT(t), "sip:"+far.Addr.String()+";transport=tls")
	if err != nil {
		t.Fatal(err)
	}
	if out.Err != nil || out.Response == nil || out.Response.StatusCode != 200 || out.Peer != "" || out.Target != far.Addr.String() {
		t.Fatalf("%+v", out)
	}
	if got := labels(out.Messages); !slices.Equal(got, []string{"out OPTIONS", "in 200 Test"}) {
		t.Errorf("ladder %v", got)
	}
	for _, m := range out.Messages {
		if m.Transport != "tls" || m.Leg != "outside" || !strings.Contains(m.Text, "Call-ID: "+m.SIPCallID) {
			t.Errorf("message %d: %s on %s/%s:\n%s", m.Index, m.Label, m.Leg, m.Transport, m.Text)
		}
	}
	if accepts.Count() != 1 {
		t.Errorf("%d TLS connections", accepts.Count())
	}
}
