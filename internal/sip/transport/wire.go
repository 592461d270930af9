package transport

import (
	"bytes"
	"maps"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// NewParser is sipgo's parser with our wrappers around the parsers of
// the headers the B2BUA relies on:
//   - LWS around ";" and "=" of parameters, which RFC 3261 allows (SWS) and
//     sipgo keeps in the parameter names and values (" tag " ≠ "tag"), and
//     around the host of a URI, is removed, and so is LWS around the
//     slashes of a Via's "SIP / 2.0 / UDP" (RFC 4475 wsinv);
//   - a From/To whose display name is not quoted although it holds
//     characters a token may not (RFC 4475 baddn: `Bell, Alexander <…>`) is
//     kept, but marked so that validate answers 400 (sipgo accepts it);
//   - a From without tag gets an empty one, see NullFromTag.
func NewParser() *sip.Parser {
	m := maps.Clone(sip.DefaultHeadersParser())
	for _, n := range []string{"from", "f"} {
		inner := nameAddrParser(m[n])
		m[n] = func(name []byte, text string) (sip.Header, error) {
			h, err := inner(name, text)
			if err == nil {
				addNullTag(h)
			}
			return h, err
		}
	}
	for _, n := range []string{"to", "t"} {
		m[n] = nameAddrParser(m[n])
	}
	for _, n := range []string{"contact", "m", "route", "record-route"} {
		m[n] = tidyParser(m[n])
	}
	for _, n := range []string{"via", "v"} {
		inner := tidyParser(m[n])
		m[n] = func(name []byte, text string) (sip.Header, error) { return inner(name, tidySentProtocol(text)) }
	}
	return sip.NewParser(sip.WithHeadersParsers(m))
}

// FlaggedHeader is a header that parsed but breaks the grammar in a way the
// B2BUA refuses with 400. It embeds the parsed header, so sipgo serialises
// it as usual and req.From()/To() still find its value.
type FlaggedHeader struct {
	sip.Header
	Reason string
}

func nameAddrParser(inner sip.HeaderParser) sip.HeaderParser {
	return func(name []byte, text string) (sip.Header, error) {
		h, err := inner(name, text)
		if err != nil || h == nil {
			return h, err
		}
		tidyHeader(h)
		if badDisplayName(text) {
			return &FlaggedHeader{Header: h, Reason: "Display name with special characters must be quoted"}, nil
		}
		return h, nil
	}
}

func tidyParser(inner sip.HeaderParser) sip.HeaderParser {
	return func(name []byte, text string) (sip.Header, error) {
		h, err := inner(name, text)
		if h != nil {
			tidyHeader(h) // also on errComaDetected: h is the first value
		}
		return h, err
	}
}

// An RFC 2543 request may have no From tag (RFC 3261 section 12.2.1.1:
// the remote tag is then null) and no RFC 3261 branch. sipgo's transaction
// layer builds the RFC 2543 transaction key of such a request from the From
// tag and, finding none, answers 400 itself before the B2BUA sees the
// request (RFC 4475 inv2543). The parser therefore gives a From without tag
// an empty one (";tag", null, as the RFC reads it); retransmissions, the
// ACK and a CANCEL get the same, so they still match the transaction.
// NullFromTag takes it off again as the request reaches the B2BUA, before
// any response is built from it; only sipgo's own 200 to a CANCEL of such
// a request is built earlier and shows ";tag".
func addNullTag(h sip.Header) {
	if fh, ok := h.(*FlaggedHeader); ok {
		h = fh.Header
	}
	if f, ok := h.(*sip.FromHeader); ok && f != nil && !f.Params.Has("tag") {
		f.Params.Add("tag", "")
	}
}

// NullFromTag removes an empty From tag (see addNullTag).
func NullFromTag(req *sip.Request) {
	if f := req.From(); f != nil {
		if t, ok := f.Params.Get("tag"); ok && t == "" {
			f.Params.Remove("tag")
		}
	}
}

// RFC3261Branch reports whether the top Via carries an RFC 3261 branch
// (magic cookie): the sender is an RFC 3261 element and must tag its From.
func RFC3261Branch(req *sip.Request) bool {
	v := req.Via()
	if v == nil {
		return false
	}
	b, _ := v.Params.Get("branch")
	return len(b) > len(sip.RFC3261BranchMagicCookie) && strings.HasPrefix(b, sip.RFC3261BranchMagicCookie)
}

// tidySentProtocol moves the LWS that RFC 3261 allows around the slashes
// of a Via's sent-protocol ("SIP  / 2.0 / UDP host") behind it: sipgo cuts
// the transport at the first blank after the second slash. The length is
// kept, because sipgo reports where a comma-separated next value starts as
// an offset into the text it was given.
func tidySentProtocol(v string) string {
	i := 0
	skip := func() {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
	}
	token := func() string {
		start := i
		for i < len(v) && isTokenChar(v[i]) {
			i++
		}
		return v[start:i]
	}
	var parts [3]string
	for k := range parts {
		if k > 0 {
			if skip(); i >= len(v) || v[i] != '/' {
				return v
			}
			i++
		}
		skip()
		if parts[k] = token(); parts[k] == "" {
			return v
		}
	}
	if strings.IndexAny(v[:i], " \t") < 0 {
		return v // nothing to move (the usual case), no allocation
	}
	compact := parts[0] + "/" + parts[1] + "/" + parts[2]
	return compact + strings.Repeat(" ", i-len(compact)) + v[i:]
}

// badDisplayName reports whether a name-addr value starts with an unquoted
// display name holding a character that changes how the value reads: a
// comma (the value looks like a list: RFC 4475 baddn), a semicolon, a
// quote, a backslash or a control character. RFC 3261 allows only tokens
// there (display-name = *(token LWS) / quoted-string); other sloppiness
// that is common in the field and unambiguous ("AT&T", "Müller") is let
// through.
func badDisplayName(v string) bool {
	v = strings.TrimLeft(v, " \t")
	if v == "" || v[0] == '"' || v[0] == '<' {
		return false
	}
	lt := strings.IndexByte(v, '<')
	if lt < 0 {
		return false // addr-spec without a display name
	}
	for i := 0; i < lt; i++ {
		if c := v[i]; c == ',' || c == ';' || c == '"' || c == '\\' || c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// isTokenChar is RFC 3261's token: alphanum / "-" / "." / "!" / "%" / "*" /
// "_" / "+" / "`" / "'" / "~".
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// tidyHeader removes the LWS sipgo leaves in parameters and hosts.
func tidyHeader(h sip.Header) {
	switch v := h.(type) {
	case *sip.FromHeader:
		if v != nil {
			tidyAddr(&v.Address, &v.Params)
		}
	case *sip.ToHeader:
		if v != nil {
			tidyAddr(&v.Address, &v.Params)
		}
	case *sip.ContactHeader:
		if v != nil {
			tidyAddr(&v.Address, &v.Params)
		}
	case *sip.RouteHeader:
		if v != nil {
			tidyAddr(&v.Address, nil)
		}
	case *sip.RecordRouteHeader:
		if v != nil {
			tidyAddr(&v.Address, nil)
		}
	case *sip.ViaHeader:
		if v != nil {
			v.ProtocolName = strings.TrimSpace(v.ProtocolName)
			v.ProtocolVersion = strings.TrimSpace(v.ProtocolVersion)
			v.Transport = strings.TrimSpace(v.Transport)
			v.Host = strings.TrimSpace(v.Host)
			v.Params = tidyParams(v.Params)
		}
	}
}

// tidyAddr tidies a URI and, when given, the header parameters after it.
func tidyAddr(u *sip.Uri, params *sip.HeaderParams) {
	u.Host = strings.TrimSpace(u.Host)
	u.UriParams = tidyParams(u.UriParams)
	if params != nil {
		*params = tidyParams(*params)
	}
}

// tidyParams trims the names and values of p and drops empty names (";;").
// p is returned as is, without allocating, when there is nothing to trim.
func tidyParams(p sip.HeaderParams) sip.HeaderParams {
	dirty := false
	for _, kv := range p {
		if kv.K == "" || hasLWSEdge(kv.K) || hasLWSEdge(kv.V) {
			dirty = true
			break
		}
	}
	if !dirty {
		return p
	}
	out := make(sip.HeaderParams, 0, len(p))
	for _, kv := range p {
		kv.K, kv.V = strings.Trim(kv.K, " \t"), strings.Trim(kv.V, " \t")
		if kv.K != "" {
			out = append(out, kv)
		}
	}
	return out
}

func hasLWSEdge(s string) bool {
	return s != "" && (s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t')
}

// ReadFilter sees every datagram and every TCP/TLS read before sipgo
// parses it (sipgo's read filter hook).
func ReadFilter(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	return normalizeScheme(data), nil
}

// normalizeScheme lets a request whose Request-URI scheme is valid
// (RFC 3986: ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")) but not letters
// only, such as RFC 4475's "soap.beep:", reach the B2BUA: sipgo's URI
// parser refuses such a scheme and drops the whole message (and closes a
// TCP connection with every dialog on it). The scheme's other characters
// become 'x', which keeps the length (a TCP read may hold the start of a
// stream of messages whose framing must not move) and can never spell
// sip, sips or tel; validate then answers 416 as for any unknown scheme.
// Only a first line shaped like a request line is touched.
func normalizeScheme(data []byte) []byte {
	line := data
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp+1 >= len(line) {
		return data
	}
	for _, c := range line[:sp] {
		if !isTokenChar(c) {
			return data // not a method: not a request line
		}
	}
	rest := line[sp+1:]
	colon := bytes.IndexByte(rest, ':')
	if colon <= 0 || colon > 64 {
		return data
	}
	scheme := rest[:colon]
	if !isAlpha(scheme[0]) {
		return data
	}
	odd := false
	for _, c := range scheme {
		switch {
		case isAlpha(c):
		case c >= '0' && c <= '9', c == '+', c == '-', c == '.':
			odd = true
		default:
			return data // not a scheme at all: leave it to the parser
		}
	}
	end := bytes.TrimRight(line, "\r")
	if !odd || !bytes.HasSuffix(end, []byte(" SIP/2.0")) {
		return data
	}
	out := bytes.Clone(data)
	for i := sp + 1; i < sp+1+colon; i++ {
		if !isAlpha(out[i]) {
			out[i] = 'x'
		}
	}
	return out
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
