// Package sdp is a lenient SDP (RFC 4566/8866) reader and rewriter for the
// media relay. PBXs in the field send SDP with lines out of order, unknown
// attributes and odd spacing; a strict parser would refuse them. This one
// keeps every line it does not change byte for byte (including its line
// ending) and only parses what the relay rewrites: o=, c=, m= and a few
// attributes.
package sdp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Limits that protect the unit from hostile SDP.
const (
	MaxSize  = 64 << 10 // bytes; a bigger body is refused
	MaxMedia = 32       // m= lines; more are refused
	maxLines = 4096
)

// ErrBadSDP is wrapped by every parse error.
var ErrBadSDP = errors.New("malformed SDP")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSDP, fmt.Sprintf(format, args...))
}

// Line is one SDP line as received: its text without the line ending, and
// the line ending itself ("\r\n", "\n" or "" for a last line without one).
type Line struct {
	Text string
	EOL  string
}

// Type is the line's type letter, or 0 when the line is not "x=...".
func (l Line) Type() byte {
	if len(l.Text) >= 2 && l.Text[1] == '=' {
		return l.Text[0]
	}
	return 0
}

// Value is the text after "x=".
func (l Line) Value() string {
	if l.Type() == 0 {
		return ""
	}
	return l.Text[2:]
}

// Session is a parsed SDP body: session-level lines, then one section per m= line.
type Session struct {
	Lines []Line // session level (v=, o=, s=, c=, t=, a=, ...)
	Media []*Media
	eol   string // line ending used for lines we add
}

// Media is one m= section; Lines[0] is the m= line.
type Media struct {
	Lines  []Line
	Kind   string // audio, video, image, ...
	Port   int
	NPorts string // "/2" when present, kept as is
	Proto  string // RTP/AVP, RTP/SAVP, udptl, ...
	Fmts   []string
	eol    string
}

// Parse reads an SDP body. It refuses bodies over MaxSize, with more than
// MaxMedia m= lines, without a leading v= line, or with an m= or c= line it
// cannot read (those are the lines the relay must rewrite).
func Parse(b []byte) (*Session, error) {
	if len(b) > MaxSize {
		return nil, bad("%d bytes is over the %d byte limit", len(b), MaxSize)
	}
	if len(b) == 0 {
		return nil, bad("empty body")
	}
	s := &Session{eol: "\r\n"}
	var cur *Media
	first := true
	n := 0
	for len(b) > 0 {
		n++
		if n > maxLines {
			return nil, bad("more than %d lines", maxLines)
		}
		var text, eol string
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			text, eol = string(b[:i]), "\n"
			if strings.HasSuffix(text, "\r") {
				text, eol = text[:len(text)-1], "\r\n"
			}
			b = b[i+1:]
		} else {
			text, b = string(b), nil
		}
		l := Line{Text: text, EOL: eol}
		if first {
			if strings.TrimSpace(text) == "" {
				s.Lines = append(s.Lines, l)
				continue
			}
			if !strings.HasPrefix(text, "v=") {
				return nil, bad("first line is not v=")
			}
			first = false
			if eol == "\n" {
				s.eol = "\n"
			}
		}
		switch l.Type() {
		case 'm':
			if len(s.Media) >= MaxMedia {
				return nil, bad("more than %d m= lines", MaxMedia)
			}
			m, err := parseMLine(l)
			if err != nil {
				return nil, err
			}
			m.eol = s.eol
			s.Media = append(s.Media, m)
			cur = m
			continue
		case 'c':
			if _, err := parseConn(l.Value()); err != nil {
				return nil, err
			}
		}
		if cur != nil {
			cur.Lines = append(cur.Lines, l)
		} else {
			s.Lines = append(s.Lines, l)
		}
	}
	if first {
		return nil, bad("no v= line")
	}
	return s, nil
}

func parseMLine(l Line) (*Media, error) {
	f := strings.Fields(l.Value())
	if len(f) < 3 {
		return nil, bad("m= line %q has fewer than 3 fields", l.Text)
	}
	m := &Media{Lines: []Line{l}, Kind: f[0], Proto: f[2], Fmts: f[3:]}
	port := f[1]
	if i := strings.IndexByte(port, '/'); i >= 0 {
		port, m.NPorts = port[:i], port[i:]
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, bad("m= line %q has a bad port", l.Text)
	}
	m.Port = p
	return m, nil
}

// Conn is a c= line's address. Unspecified (0.0.0.0 / ::) means "do not send"
// (the old way to put a call on hold).
type Conn struct {
	Addr netip.Addr
}

func parseConn(v string) (Conn, error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return Conn{}, bad("c= line %q is not IN IP4/IP6 address", v)
	}
	a := f[2]
	if i := strings.IndexByte(a, '/'); i >= 0 { // multicast TTL / count
		a = a[:i]
	}
	addr, err := netip.ParseAddr(a)
	if err != nil {
		// A host name is legal SDP but nothing we can relay to.
		return Conn{}, bad("c= address %q is not an IP address", f[2])
	}
	if (f[1] == "IP4") != addr.Is4() {
		return Conn{}, bad("c= address %q does not match %s", f[2], f[1])
	}
	return Conn{Addr: addr}, nil
}

// ConnLine formats the value of a c= line for addr.
func ConnLine(addr netip.Addr) string {
	if addr.Is4() || addr.Is4In6() {
		return "c=IN IP4 " + addr.Unmap().String()
	}
	return "c=IN IP6 " + addr.String()
}

// Marshal writes the session back. Untouched lines come out exactly as they came in.
func (s *Session) Marshal() []byte {
	var b bytes.Buffer
	for _, l := range s.Lines {
		b.WriteString(l.Text)
		b.WriteString(l.EOL)
	}
	for _, m := range s.Media {
		for _, l := range m.Lines {
			b.WriteString(l.Text)
			b.WriteString(l.EOL)
		}
	}
	return b.Bytes()
}

// Clone returns a deep copy.
func (s *Session) Clone() *Session {
	c := &Session{Lines: append([]Line(nil), s.Lines...), eol: s.eol}
	for _, m := range s.Media {
		mc := *m
		mc.Lines = append([]Line(nil), m.Lines...)
		mc.Fmts = append([]string(nil), m.Fmts...)
		c.Media = append(c.Media, &mc)
	}
	return c
}

func findLine(lines []Line, t byte) int {
	for i, l := range lines {
		if l.Type() == t {
			return i
		}
	}
	return -1
}

// Conn returns the session-level connection address.
func (s *Session) Conn() (netip.Addr, bool) {
	if i := findLine(s.Lines, 'c'); i >= 0 {
		c, err := parseConn(s.Lines[i].Value())
		return c.Addr, err == nil
	}
	return netip.Addr{}, false
}

// MediaConn returns the address media of m goes to: its own c= line or the session's.
func (s *Session) MediaConn(m *Media) (netip.Addr, bool) {
	if i := findLine(m.Lines, 'c'); i >= 0 {
		c, err := parseConn(m.Lines[i].Value())
		return c.Addr, err == nil
	}
	return s.Conn()
}

// replaceText sets line i's text, keeping its line ending.
func replaceText(lines []Line, i int, text string) {
	lines[i].Text = text
	if lines[i].EOL == "" {
		lines[i].EOL = "\r\n"
	}
}

// SetOrigin rewrites the address of the o= line (topology hiding); the rest
// of the line, including the version the far end counts up, is kept.
func (s *Session) SetOrigin(addr netip.Addr) {
	i := findLine(s.Lines, 'o')
	if i < 0 {
		return
	}
	f := strings.Fields(s.Lines[i].Value())
	if len(f) != 6 {
		return
	}
	cl := strings.Fields(ConnLine(addr)[2:])
	f[4], f[5] = cl[1], cl[2]
	replaceText(s.Lines, i, "o="+strings.Join(f, " "))
}

// SetConn points every c= line at addr. When neither the session nor a
// media section has a c= line, one is added to that media section. A c=
// line holding the unspecified address (hold) is kept: the far end must
// still see the hold.
func (s *Session) SetConn(addr netip.Addr) {
	line := ConnLine(addr)
	sessionConn := false
	if i := findLine(s.Lines, 'c'); i >= 0 {
		sessionConn = true
		if a, ok := s.Conn(); !ok || !a.IsUnspecified() {
			replaceText(s.Lines, i, line)
		}
	}
	for _, m := range s.Media {
		i := findLine(m.Lines, 'c')
		if i >= 0 {
			if a, ok := s.MediaConn(m); !ok || !a.IsUnspecified() {
				replaceText(m.Lines, i, line)
			}
			continue
		}
		if !sessionConn {
			m.insertAfterHead(Line{Text: line, EOL: m.eol})
		}
	}
}

// insertAfterHead inserts l after the m= line and an i= line if present.
func (m *Media) insertAfterHead(l Line) {
	at := 1
	if len(m.Lines) > 1 && m.Lines[1].Type() == 'i' {
		at = 2
	}
	m.Lines = append(m.Lines[:at], append([]Line{l}, m.Lines[at:]...)...)
}

func (m *Media) writeMLine() {
	f := []string{m.Kind, strconv.Itoa(m.Port) + m.NPorts, m.Proto}
	f = append(f, m.Fmts...)
	replaceText(m.Lines, 0, "m="+strings.Join(f, " "))
}

// SetPort sets the m= port (0 disables the stream).
func (m *Media) SetPort(p int) {
	if m.Port == p {
		return
	}
	m.Port = p
	if p == 0 {
		m.NPorts = ""
	}
	m.writeMLine()
}

// SetProto sets the m= transport protocol (e.g. RTP/SAVP).
func (m *Media) SetProto(p string) {
	if m.Proto == p {
		return
	}
	m.Proto = p
	m.writeMLine()
}

// attrName splits an a= line value into name and value.
func attrName(v string) (name, val string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		return v[:i], v[i+1:]
	}
	return v, ""
}

// Attrs returns the values of every a=name line of the section.
func (m *Media) Attrs(name string) []string {
	var out []string
	for _, l := range m.Lines {
		if l.Type() != 'a' {
			continue
		}
		if n, v := attrName(l.Value()); strings.EqualFold(n, name) {
			out = append(out, v)
		}
	}
	return out
}

// Has reports whether the section has an a=name line.
func (m *Media) Has(name string) bool { return len(m.Attrs(name)) > 0 }

// Attr returns the first a=name value.
func (m *Media) Attr(name string) (string, bool) {
	v := m.Attrs(name)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// RemoveAttrs drops every a= line whose name is one of names.
func (m *Media) RemoveAttrs(names ...string) {
	out := m.Lines[:1]
	for _, l := range m.Lines[1:] {
		if l.Type() == 'a' {
			if n, _ := attrName(l.Value()); hasName(names, n) {
				continue
			}
		}
		out = append(out, l)
	}
	m.Lines = out
}

// SetAttr replaces the value of every a=name line, returning whether one existed.
func (m *Media) SetAttr(name, value string) bool {
	found := false
	for i, l := range m.Lines {
		if l.Type() != 'a' {
			continue
		}
		if n, _ := attrName(l.Value()); strings.EqualFold(n, name) {
			replaceText(m.Lines, i, "a="+n+":"+value)
			found = true
		}
	}
	return found
}

// AddAttr appends "a=text" at the end of the section.
func (m *Media) AddAttr(text string) {
	m.Lines = append(m.Lines, Line{Text: "a=" + text, EOL: m.eol})
}

// Direction returns the section's direction attribute (sendrecv when none).
func (m *Media) Direction(s *Session) string {
	for _, d := range []string{"sendonly", "recvonly", "inactive", "sendrecv"} {
		if m.Has(d) {
			return d
		}
	}
	for _, l := range s.Lines {
		switch l.Text {
		case "a=sendonly", "a=recvonly", "a=inactive":
			return l.Text[2:]
		}
	}
	return "sendrecv"
}

// RTCP is an a=rtcp attribute (RFC 3605).
type RTCP struct {
	Port int
	Addr netip.Addr // invalid when the line has no address
}

// RTCPAttr returns the section's a=rtcp value.
func (m *Media) RTCPAttr() (RTCP, bool) {
	v, ok := m.Attr("rtcp")
	if !ok {
		return RTCP{}, false
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return RTCP{}, false
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p <= 0 || p > 65535 {
		return RTCP{}, false
	}
	r := RTCP{Port: p}
	if len(f) == 4 {
		if c, err := parseConn(strings.Join(f[1:], " ")); err == nil {
			r.Addr = c.Addr
		}
	}
	return r, true
}

// SetRTCP rewrites an existing a=rtcp line to port (and addr when the line carried one).
func (m *Media) SetRTCP(port int, addr netip.Addr) {
	v, ok := m.Attr("rtcp")
	if !ok {
		return
	}
	val := strconv.Itoa(port)
	if len(strings.Fields(v)) == 4 {
		val += " " + ConnLine(addr)[2:]
	}
	m.SetAttr("rtcp", val)
}

// RTPMap returns the encoding name for payload type pt ("PCMA/8000"), or "".
func (m *Media) RTPMap(pt string) string {
	for _, v := range m.Attrs("rtpmap") {
		f := strings.Fields(v)
		if len(f) == 2 && f[0] == pt {
			return f[1]
		}
	}
	return ""
}

// RemoveAttrs drops session-level a= lines whose name is one of names.
func (s *Session) RemoveAttrs(names ...string) {
	out := s.Lines[:0]
	for _, l := range s.Lines {
		if l.Type() == 'a' {
			n, _ := attrName(l.Value())
			if hasName(names, n) {
				continue
			}
		}
		out = append(out, l)
	}
	s.Lines = out
}

func hasName(names []string, n string) bool {
	for _, x := range names {
		if strings.EqualFold(n, x) {
			return true
		}
	}
	return false
}
