package siptest

// Raw-socket user agents: requests written as text, so that a test
// controls every byte (malformed input, floods, scanners), and answers
// parsed with sipgo's parser.

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
)

// NewTag returns a random tag, branch or Call-ID part.
func NewTag() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RawUDP is a raw SIP-over-UDP socket; Local is its address.
type RawUDP struct {
	Conn  *net.UDPConn
	Local string
}

// ListenRawUDP opens a RawUDP on addr (port 0: a free one), closed when
// the test ends.
func ListenRawUDP(t testing.TB, addr string) *RawUDP {
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
	return &RawUDP{Conn: c, Local: c.LocalAddr().String()}
}

// Send writes msg to the address to.
func (s *RawUDP) Send(to, msg string) error {
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return err
	}
	_, err = s.Conn.WriteToUDP([]byte(msg), ua)
	return err
}

// Recv returns the next SIP message and its sender, or an error after d.
// Datagrams that do not parse are skipped.
func (s *RawUDP) Recv(d time.Duration) (sip.Message, *net.UDPAddr, error) {
	buf := make([]byte, 65535)
	deadline := time.Now().Add(d)
	for {
		_ = s.Conn.SetReadDeadline(deadline)
		n, from, err := s.Conn.ReadFromUDP(buf)
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

// Close closes the socket.
func (s *RawUDP) Close() { s.Conn.Close() }

// RawRequest is a SIP request over UDP written as text.
type RawRequest struct {
	Method, URI string
	Local       string // host:port it comes from: Via, From host, Contact
	User        string // From and Contact user
	CallID      string
	FromTag     string
	ToTag       string // "": out of dialog
	CSeq        int
	Extra       string // more header lines, each ending in CRLF
	Body        string // SDP when not empty
}

// String is the request as written on the wire.
func (r RawRequest) String() string {
	to := "<" + r.URI + ">"
	if r.ToTag != "" {
		to += ";tag=" + r.ToTag
	}
	ct := ""
	if r.Body != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	host, _, _ := strings.Cut(r.Local, ":")
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:%s@%s>\r\n%s%sContent-Length: %d\r\n\r\n%s",
		r.Method, r.URI, r.Local, NewTag(), r.User, host, r.FromTag, to, r.CallID, r.CSeq, r.Method, r.User, r.Local,
		r.Extra, ct, len(r.Body), r.Body)
}

// RawUAS plays a trunk on a raw socket: it answers INVITEs for User with
// 200 and Answer (resent until the ACK, bounded), other INVITEs with 486,
// and other requests with 200, counting what it got.
type RawUAS struct {
	Conn    *RawUDP
	User    string
	Answer  []byte
	Invites atomic.Int64
	Acks    atomic.Int64
	Byes    atomic.Int64
	Others  atomic.Int64 // requests other than INVITE, ACK, BYE

	mu   sync.Mutex
	tags map[string]string // Call-ID → our tag
}

// StartRawUAS serves a RawUAS on addr until the test ends.
func StartRawUAS(t testing.TB, addr, user string, answer []byte) *RawUAS {
	s := &RawUAS{Conn: ListenRawUDP(t, addr), User: user, Answer: answer, tags: map[string]string{}}
	go s.serve()
	return s
}

func (s *RawUAS) serve() {
	for {
		m, from, err := s.Conn.Recv(time.Hour)
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
			s.Acks.Add(1)
		case sip.INVITE:
			s.Invites.Add(1)
			if req.Recipient.User != s.User {
				_ = s.Conn.Send(dst, s.answer(req, 486, "Busy Here", nil).String())
				continue
			}
			res := s.answer(req, 200, "OK", s.Answer)
			go func() {
				// Resend the 200 until the ACK arrives (bounded).
				acks := s.Acks.Load()
				for i := 0; i < 8 && s.Acks.Load() == acks; i++ {
					_ = s.Conn.Send(dst, res.String())
					time.Sleep(500 * time.Millisecond)
				}
			}()
		case sip.BYE:
			s.Byes.Add(1)
			_ = s.Conn.Send(dst, s.answer(req, 200, "OK", nil).String())
		default:
			s.Others.Add(1)
			_ = s.Conn.Send(dst, s.answer(req, 200, "OK", nil).String())
		}
	}
}

func (s *RawUAS) answer(req *sip.Request, code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	s.mu.Lock()
	tag := s.tags[req.CallID().Value()]
	if tag == "" {
		tag = NewTag()
		s.tags[req.CallID().Value()] = tag
	}
	s.mu.Unlock()
	if _, ok := res.To().Params.Get("tag"); !ok {
		res.To().Params.Add("tag", tag)
	}
	res.AppendHeader(sip.NewHeader("Contact", "<sip:"+s.User+"@"+s.Conn.Local+">"))
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody(body)
	}
	return res
}
