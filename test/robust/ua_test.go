package robust_test

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// request writes a SIP request as text from the robust tests' user.
func request(method, ruri, local, callID, fromTag, toTag string, cseq int, extra string, body string) string {
	return siptest.RawRequest{Method: method, URI: ruri, Local: local, User: "robust", CallID: callID,
		FromTag: fromTag, ToTag: toTag, CSeq: cseq, Extra: extra, Body: body}.String()
}

func sdp(ip string, port int) string { return string(siptest.SDP(ip, port)) }

// optionsOK sends an OPTIONS to the unit from a fresh socket on 127.0.0.89
// and reports whether any answer came back.
func (u *unit) optionsOK(t *testing.T, transport, addr string) bool {
	t.Helper()
	c := siptest.ListenRawUDP(t, "127.0.0.89:0")
	defer c.Close()
	for range 3 {
		msg := request("OPTIONS", "sip:"+addr, c.Local, siptest.NewTag(), siptest.NewTag(), "", 1, "", "")
		if c.Send(addr, msg) != nil {
			return false
		}
		if m, _, err := c.Recv(time.Second); err == nil {
			if r, ok := m.(*sip.Response); ok && r.StatusCode == 200 {
				return true
			}
		}
	}
	return false
}

// call is a call from the PBX (UAC) through the unit to the trunk (UAS).
type call struct {
	u       *unit
	uac     *siptest.RawUDP
	uas     *siptest.RawUAS // the trunk: answers 4711
	callID  string
	fromTag string
	toTag   string
	ruri    string
}

// startCall places a call and waits until it is established (ACK sent).
func startCall(t *testing.T, u *unit) *call {
	t.Helper()
	c := &call{u: u, uac: siptest.ListenRawUDP(t, u.pbx), uas: siptest.StartRawUAS(t, u.trunk, "4711", siptest.SDP(trunkIP, 31000)), callID: siptest.NewTag() + "@robust", fromTag: siptest.NewTag()}
	ruri := "sip:4711@" + u.insideUDP
	inv := request("INVITE", ruri, c.uac.Local, c.callID, c.fromTag, "", 1, "", sdp(pbxIP, 30000))
	var ok *sip.Response
	for attempt := 0; attempt < 6 && ok == nil; attempt++ {
		if err := c.uac.Send(u.insideUDP, inv); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			m, _, err := c.uac.Recv(time.Until(deadline))
			if err != nil {
				break
			}
			r, isRes := m.(*sip.Response)
			if !isRes || r.CSeq().MethodName != sip.INVITE || r.StatusCode < 200 {
				continue
			}
			if r.StatusCode != 200 {
				t.Fatalf("call answered %d %s", r.StatusCode, r.Reason)
			}
			ok = r
			break
		}
	}
	if ok == nil {
		t.Fatal("call not answered")
	}
	c.toTag, _ = ok.To().Params.Get("tag")
	c.ruri = ruri
	if ct := ok.Contact(); ct != nil {
		c.ruri = ct.Address.String()
	}
	ack := request("ACK", c.ruri, c.uac.Local, c.callID, c.fromTag, c.toTag, 1, "", "")
	if err := c.uac.Send(u.insideUDP, ack); err != nil {
		t.Fatal(err)
	}
	return c
}

// hangUp sends the in-dialog BYE and returns the final status (0 = none),
// and whether the trunk got the BYE.
func (c *call) hangUp(t *testing.T) (int, bool) {
	t.Helper()
	byesBefore := c.uas.Byes.Load()
	bye := request("BYE", c.ruri, c.uac.Local, c.callID, c.fromTag, c.toTag, 2, "", "")
	status := 0
	for attempt := 0; attempt < 6 && status == 0; attempt++ {
		if err := c.uac.Send(c.u.insideUDP, bye); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			m, _, err := c.uac.Recv(time.Until(deadline))
			if err != nil {
				break
			}
			if r, ok := m.(*sip.Response); ok && r.CSeq().MethodName == sip.BYE && r.StatusCode >= 200 {
				status = r.StatusCode
				break
			}
		}
	}
	for i := 0; i < 50 && c.uas.Byes.Load() == byesBefore; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	return status, c.uas.Byes.Load() > byesBefore
}

// close frees the call's sockets so that the next call can bind them.
func (c *call) close() {
	c.uac.Close()
	c.uas.Conn.Close()
}
