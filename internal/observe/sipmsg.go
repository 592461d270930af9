package observe

import (
	"bytes"
	"strconv"
	"strings"
	"unsafe"
)

// Head is what the trace store reads from a SIP message: the start line and
// the few headers needed to summarise and search calls. It is filled by
// ReadHead, a tolerant reader that never fails: whatever cannot be read is
// left empty, because a trace must keep even the messages the SIP stack
// refused.
type Head struct {
	Method     string // request method, or the CSeq method of a response
	Status     int    // response status code; 0 for a request
	Reason     string // response reason phrase
	RequestURI string
	CallID     string
	FromURI    string // the URI of the From header, without display name and parameters
	ToURI      string
	FromUser   string
	ToUser     string
	CSeq       uint32
	SDP        bool // the body is SDP (Content-Type application/sdp)
}

// IsRequest reports whether the message is a request.
func (h Head) IsRequest() bool { return h.Status == 0 }

// Label is what a ladder arrow shows: the method of a request, or the code
// and reason of a response.
func (h Head) Label() string {
	switch {
	case h.Status != 0 && h.Reason != "":
		return strconv.Itoa(h.Status) + " " + h.Reason
	case h.Status != 0:
		return strconv.Itoa(h.Status)
	case h.Method != "":
		return h.Method
	}
	return "?"
}

// maxHeadScan bounds how much of a message ReadHead looks at; SIP headers
// that matter for a summary are always near the top.
const maxHeadScan = 16 << 10

// ReadHead reads the start line and the Call-ID, From, To and CSeq headers
// (long or compact form) of a SIP message.
func ReadHead(raw []byte) Head { return readHead(raw, false) }

// readHead is ReadHead; with shared, the strings of the Head point into raw
// instead of being copies (no allocation): raw must then never change and
// lives as long as they do.
func readHead(raw []byte, shared bool) Head {
	str := func(b []byte) string {
		if shared {
			return unsafe.String(unsafe.SliceData(b), len(b))
		}
		return string(b)
	}
	var h Head
	if len(raw) > maxHeadScan {
		raw = raw[:maxHeadScan]
	}
	line, rest := nextLine(raw)
	h.readStartLine(str(line))
	cseqMethod := ""
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break // end of headers
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		// Compare names without allocating; convert only the values kept.
		name = bytes.TrimSpace(name)
		val := func() string { return str(bytes.TrimSpace(value)) }
		switch {
		case is(name, "call-id", "i"):
			if h.CallID == "" {
				h.CallID = val()
			}
		case is(name, "from", "f"):
			if h.FromURI == "" {
				h.FromURI = headerURI(val())
				h.FromUser = uriUser(h.FromURI)
			}
		case is(name, "to", "t"):
			if h.ToURI == "" {
				h.ToURI = headerURI(val())
				h.ToUser = uriUser(h.ToURI)
			}
		case is(name, "content-type", "c"):
			h.SDP = strings.HasPrefix(strings.ToLower(val()), "application/sdp")
		case is(name, "cseq", ""):
			num, method, _ := strings.Cut(val(), " ")
			if n, err := strconv.ParseUint(num, 10, 32); err == nil {
				h.CSeq = uint32(n)
			}
			cseqMethod = strings.ToUpper(strings.TrimSpace(method))
		}
	}
	if h.Status != 0 {
		h.Method = cseqMethod
	}
	return h
}

// readStartLine reads "METHOD URI SIP/2.0" or "SIP/2.0 CODE REASON".
func (h *Head) readStartLine(line string) {
	if rest, ok := strings.CutPrefix(line, "SIP/2.0 "); ok {
		code, reason, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
		if n, err := strconv.Atoi(code); err == nil && n >= 100 && n <= 699 {
			h.Status = n
			h.Reason = strings.TrimSpace(reason)
		}
		return
	}
	method, rest, ok := strings.Cut(line, " ")
	if !ok || !isToken(method) {
		return
	}
	h.Method = method
	uri, _, _ := strings.Cut(rest, " ")
	h.RequestURI = uri
}

// is reports whether a header name is long or its compact form.
func is(name []byte, long, compact string) bool {
	if len(name) == len(compact) && compact != "" {
		return strings.EqualFold(string(name), compact)
	}
	return len(name) == len(long) && strings.EqualFold(string(name), long)
}

// nextLine splits off one line ending in CRLF or a lone LF.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line = b[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, b[i+1:]
}

// headerURI returns the URI of a From or To value, e.g.
// `"Bob" <sip:+4610@example.com;user=phone>;tag=x` → "sip:+4610@example.com;user=phone".
func headerURI(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	} else if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i] // without <>, parameters belong to the header
	}
	return strings.TrimSpace(v)
}

// uriUser returns the user part of a SIP URI ("" when it has none).
func uriUser(uri string) string {
	_, v, ok := strings.Cut(uri, ":") // scheme
	if !ok {
		return ""
	}
	user, _, ok := strings.Cut(v, "@")
	if !ok {
		return "" // no user part, only a host
	}
	user, _, _ = strings.Cut(user, ";")
	user, _, _ = strings.Cut(user, ":") // password
	return user
}

// isToken reports whether s is a non-empty RFC 3261 token made of letters
// (methods in practice; anything else is not worth a label).
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}
