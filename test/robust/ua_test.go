package robust_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

func newTag() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sipConn is a raw SIP-over-UDP socket: the tests write requests as text,
// so that they control every byte, and parse answers with sipgo's parser.
type sipConn struct {
	c     *net.UDPConn
	local string
}

func listenUDP(t *testing.T, addr string) *sipConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sipConn{c: c, local: c.LocalAddr().String()}
}

func (s *sipConn) send(to, msg string) error {
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return err
	}
	_, err = s.c.WriteToUDP([]byte(msg), ua)
	return err
}

// recv returns the next SIP message, or an error after d.
func (s *sipConn) recv(d time.Duration) (sip.Message, *net.UDPAddr, error) {
	buf := make([]byte, 65535)
	deadline := time.Now().Add(d)
	for {
		s.c.SetReadDeadline(deadline)
		n, from, err := s.c.ReadFromUDP(buf)
		if err != nil {
			return nil, nil, err
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue // not for us to judge here
		}
		return m, from, nil
	}
}

// request writes a SIP request as text.
func request(method, ruri, local, callID, fromTag, toTag string, cseq int, extra string, body string) string {
	to := "<" + ruri + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:robust@%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:robust@%s>\r\n%s%sContent-Length: %d\r\n\r\n%s",
		method, ruri, local, newTag(), strings.Split(local, ":")[0], fromTag, to, callID, cseq, method, local, extra, ct, len(body), body)
}

func sdp(ip string, port int) string { return string(siptest.SDP(ip, port)) }

// optionsOK sends an OPTIONS to the unit from a fresh socket on 127.0.0.89
// and reports whether any answer came back.
func (u *unit) optionsOK(t *testing.T, transport, addr string) bool {
	t.Helper()
	c := listenUDP(t, "127.0.0.89:0")
	defer c.c.Close()
	for range 3 {
		msg := request("OPTIONS", "sip:"+addr, c.local, newTag(), newTag(), "", 1, "", "")
		if c.send(addr, msg) != nil {
			return false
		}
		if m, _, err := c.recv(time.Second); err == nil {
			if r, ok := m.(*sip.Response); ok && r.StatusCode == 200 {
				return true
			}
		}
	}
	return false
}

// uas plays the trunk: it answers INVITEs for user 4711 with 200 (resent
// until ACKed), other INVITEs with 486, and other requests with 200.
type uas struct {
	c       *sipConn
	invites atomic.Int64
	acks    atomic.Int64
	byes    atomic.Int64
	others  atomic.Int64 // requests other than INVITE, ACK, BYE
	mu      sync.Mutex
	tags    map[string]string // Call-ID -> our tag
}

func startUAS(t *testing.T, addr string) *uas {
	s := &uas{c: listenUDP(t, addr), tags: map[string]string{}}
	go s.serve()
	return s
}

func (s *uas) serve() {
	for {
		m, from, err := s.c.recv(time.Hour)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			continue
		}
		dst := from.String()
		switch req.Method {
		case sip.ACK:
			s.acks.Add(1)
		case sip.INVITE:
			s.invites.Add(1)
			if req.Recipient.User != "4711" {
				s.c.send(dst, s.answer(req, 486, "Busy Here", "").String())
				continue
			}
			res := s.answer(req, 200, "OK", sdp(trunkIP, 31000))
			go func() {
				// Resend the 200 until the ACK arrives (bounded).
				acks := s.acks.Load()
				for i := 0; i < 8 && s.acks.Load() == acks; i++ {
					s.c.send(dst, res.String())
					time.Sleep(500 * time.Millisecond)
				}
			}()
		case sip.BYE:
			s.byes.Add(1)
			s.c.send(dst, s.answer(req, 200, "OK", "").String())
		default:
			s.others.Add(1)
			s.c.send(dst, s.answer(req, 200, "OK", "").String())
		}
	}
}

func (s *uas) answer(req *sip.Request, code int, reason, body string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	s.mu.Lock()
	tag := s.tags[req.CallID().Value()]
	if tag == "" {
		tag = newTag()
		s.tags[req.CallID().Value()] = tag
	}
	s.mu.Unlock()
	if _, ok := res.To().Params.Get("tag"); !ok {
		res.To().Params.Add("tag", tag)
	}
	res.AppendHeader(sip.NewHeader("Contact", "<sip:4711@"+s.c.local+">"))
	if body != "" {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(body))
	}
	return res
}

// call is a call from the PBX (UAC) through the unit to the trunk (UAS).
type call struct {
	u       *unit
	uac     *sipConn
	uas     *uas
	callID  string
	fromTag string
	toTag   string
	ruri    string
}

// startCall places a call and waits until it is established (ACK sent).
func startCall(t *testing.T, u *unit) *call {
	t.Helper()
	c := &call{u: u, uac: listenUDP(t, u.pbx), uas: startUAS(t, u.trunk), callID: newTag() + "@robust", fromTag: newTag()}
	ruri := "sip:4711@" + u.insideUDP
	inv := request("INVITE", ruri, c.uac.local, c.callID, c.fromTag, "", 1, "", sdp(pbxIP, 30000))
	var ok *sip.Response
	for attempt := 0; attempt < 6 && ok == nil; attempt++ {
		if err := c.uac.send(u.insideUDP, inv); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			m, _, err := c.uac.recv(time.Until(deadline))
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
	ack := request("ACK", c.ruri, c.uac.local, c.callID, c.fromTag, c.toTag, 1, "", "")
	if err := c.uac.send(u.insideUDP, ack); err != nil {
		t.Fatal(err)
	}
	return c
}

// hangUp sends the in-dialog BYE and returns the final status (0 = none),
// and whether the trunk got the BYE.
func (c *call) hangUp(t *testing.T) (int, bool) {
	t.Helper()
	byesBefore := c.uas.byes.Load()
	bye := request("BYE", c.ruri, c.uac.local, c.callID, c.fromTag, c.toTag, 2, "", "")
	status := 0
	for attempt := 0; attempt < 6 && status == 0; attempt++ {
		if err := c.uac.send(c.u.insideUDP, bye); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			m, _, err := c.uac.recv(time.Until(deadline))
			if err != nil {
				break
			}
			if r, ok := m.(*sip.Response); ok && r.CSeq().MethodName == sip.BYE && r.StatusCode >= 200 {
				status = r.StatusCode
				break
			}
		}
	}
	for i := 0; i < 50 && c.uas.byes.Load() == byesBefore; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	return status, c.uas.byes.Load() > byesBefore
}

// close frees the call's sockets so that the next call can bind them.
func (c *call) close() {
	c.uac.c.Close()
	c.uas.c.c.Close()
}
