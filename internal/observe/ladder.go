package observe

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Ladder drawing: lanes from left to right are the caller side's remote
// peers (e.g. the PBX), the unit's interface on that side (e.g. inside), the
// unit itself, the other interface (outside) and its peers (the trunk). One
// arrow per message in time order, each a link (#m<index>, data-index) whose
// <title> holds the whole message for the web admin to show.
const (
	laneWidth  = 180
	timeColumn = 80
	headHeight = 64
	rowHeight  = 30
	padBottom  = 20
)

// arrowKinds: requests, responses, error responses (400 and up).
var arrowKinds = []struct{ name, class, color string }{
	{"req", "req", "#333"}, {"resp", "resp", "#2a7a2a"}, {"err", "resp err", "#b02a2a"},
}

type lane struct {
	title, sub string
	x          int
}

type ladderLayout struct {
	lanes  []lane
	remote map[string]int // side+remote address → lane index
	iface  [2]int         // lane index of the left and right interface
	side   func(m *Message) int
}

// sideOf decides which side (0 left, 1 right) each message's leg is drawn
// on: a leg named "inside" left and "outside" right; otherwise the first leg
// seen is left. With only one interface (one-armed), the legs are told
// apart by their SIP Call-ID.
func sideOf(msgs []Message) func(m *Message) int {
	legs := map[string]bool{}
	for _, m := range msgs {
		legs[m.Leg] = true
	}
	key := func(m *Message) string { return m.Leg }
	if len(legs) < 2 {
		key = func(m *Message) string { return m.SIPCallID }
	}
	first := ""
	if len(msgs) > 0 {
		first = key(&msgs[0])
	}
	if len(legs) == 1 && len(msgs) > 0 && msgs[0].Direction == "out" && onlyCallID(msgs) {
		// one exchange the unit started itself (a test call, a ping):
		// the unit on the left, the far end on the right
		return func(*Message) int { return 1 }
	}
	return func(m *Message) int {
		switch {
		case len(legs) >= 2 && m.Leg == "inside":
			return 0
		case len(legs) >= 2 && m.Leg == "outside":
			return 1
		case key(m) == first:
			return 0
		}
		return 1
	}
}

// onlyCallID reports whether every message has the first one's Call-ID.
func onlyCallID(msgs []Message) bool {
	for _, m := range msgs {
		if m.SIPCallID != msgs[0].SIPCallID {
			return false
		}
	}
	return true
}

// PeerNamer names the peer at a remote address ("" when none is known), so
// that the ladder's outer lanes carry the peers' names.
type PeerNamer func(remote netip.AddrPort) string

func layout(msgs []Message, names PeerNamer) *ladderLayout {
	l := &ladderLayout{remote: map[string]int{}, side: sideOf(msgs)}
	var remotes [2][]string
	var legName, local [2]string
	addrOf := map[string]netip.AddrPort{}
	for i := range msgs {
		m := &msgs[i]
		s := l.side(m)
		if legName[s] == "" {
			legName[s] = m.Leg
		}
		if local[s] == "" && m.Local.IsValid() {
			local[s] = m.Local.String() + " " + m.Transport
		}
		r := m.Remote.String()
		if !m.Remote.IsValid() {
			r = "?"
		}
		k := fmt.Sprint(s, r)
		addrOf[k] = m.Remote
		if _, ok := l.remote[k]; !ok {
			l.remote[k] = -1
			remotes[s] = append(remotes[s], r)
		}
	}
	role := func(s int) string {
		switch {
		case legName[s] == "inside":
			return "PBX"
		case legName[s] == "outside":
			return "trunk"
		case s == 0:
			return "caller side"
		}
		return "callee side"
	}
	add := func(title, sub string) int {
		l.lanes = append(l.lanes, lane{title: title, sub: sub, x: timeColumn + laneWidth/2 + len(l.lanes)*laneWidth})
		return len(l.lanes) - 1
	}
	title := func(s int, r string) string {
		if a := addrOf[fmt.Sprint(s, r)]; names != nil && a.IsValid() {
			if n := names(a); n != "" {
				return n
			}
		}
		return role(s)
	}
	for _, r := range remotes[0] { // first seen outermost (the caller, as a rule)
		l.remote[fmt.Sprint(0, r)] = add(title(0, r), r)
	}
	l.iface[0] = -1
	if legName[0] != "" || len(remotes[0]) > 0 {
		l.iface[0] = add(orDash(legName[0]), local[0])
	}
	add("Palisade", "")
	l.iface[1] = add(orDash(legName[1]), local[1])
	for _, r := range remotes[1] { // first seen nearest the unit
		l.remote[fmt.Sprint(1, r)] = add(title(1, r), r)
	}
	return l
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteLadder draws msgs (in time order, as Traces.Messages returns them) as
// an SVG document.
func WriteLadder(w io.Writer, title string, msgs []Message) error {
	return WriteLadderNamed(w, title, msgs, nil)
}

// WriteLadderNamed is WriteLadder with the outer lanes named by names (the
// configured peers) where it knows the address; others keep their role
// (PBX, trunk).
func WriteLadderNamed(w io.Writer, title string, msgs []Message, names PeerNamer) error {
	l := layout(msgs, names)
	width := timeColumn + len(l.lanes)*laneWidth
	height := headHeight + len(msgs)*rowHeight + padBottom
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, "<title>%s</title>\n", xmlEscape(title))
	// Presentation attributes rather than a <style> element: the admin's
	// Content-Security-Policy blocks inline styles, and the web admin embeds
	// the drawing in its pages. Classes stay for its own stylesheet.
	b.WriteString(`<defs>`)
	for _, k := range arrowKinds {
		fmt.Fprintf(&b, `<marker id="arrow-%s" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">`+
			`<path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`, k.name, k.color)
	}
	b.WriteString("</defs>\n")
	bottom := height - padBottom/2
	for i, ln := range l.lanes {
		class, look := "lane", `stroke="#999" stroke-dasharray="4 3"`
		if ln.title == "Palisade" || i == l.iface[0] || i == l.iface[1] {
			class, look = "lane unit", `stroke="#2a5db0" stroke-width="3"`
		}
		fmt.Fprintf(&b, `<text class="head" x="%d" y="20" text-anchor="middle" font-weight="bold">%s</text>`, ln.x, xmlEscape(ln.title))
		fmt.Fprintf(&b, `<text class="sub" x="%d" y="36" text-anchor="middle" font-size="10" fill="#555">%s</text>`, ln.x, xmlEscape(ln.sub))
		fmt.Fprintf(&b, `<line class="%s" x1="%d" y1="44" x2="%d" y2="%d" %s/>`+"\n", class, ln.x, ln.x, bottom, look)
	}
	var t0 time.Time
	if len(msgs) > 0 {
		t0 = msgs[0].Time
	}
	for i := range msgs {
		writeArrow(&b, l, &msgs[i], headHeight+i*rowHeight+rowHeight/2+6, t0)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeArrow(b *strings.Builder, l *ladderLayout, m *Message, y int, t0 time.Time) {
	s := l.side(m)
	r := m.Remote.String()
	if !m.Remote.IsValid() {
		r = "?"
	}
	rx := l.lanes[l.remote[fmt.Sprint(s, r)]].x
	ix := l.lanes[l.iface[s]].x
	x1, x2 := rx, ix
	if m.Direction == "out" {
		x1, x2 = ix, rx
	}
	kind := arrowKinds[0]
	switch {
	case m.Status >= 400:
		kind = arrowKinds[2]
	case m.Status != 0:
		kind = arrowKinds[1]
	}
	class := "msg " + kind.class
	full := fmt.Sprintf("%s %s %s → %s (%s)\n\n%s",
		m.Time.UTC().Format("15:04:05.000"), m.Leg, addrOf(m, true), addrOf(m, false), m.Transport, m.Text)
	// The message is in the arrow's <title> (a tooltip anywhere) and in
	// data-message, which the web admin shows when an arrow is clicked.
	fmt.Fprintf(b, `<a href="#m%d" data-index="%d"><g class="%s" id="m%d" data-index="%d" data-leg="%s" data-direction="%s" data-message="%s">`,
		m.Index, m.Index, class, m.Index, m.Index, xmlEscape(m.Leg), m.Direction, attrEscape(full))
	fmt.Fprintf(b, "<title>%s</title>", xmlEscape(full))
	lo, hi := min(x1, x2), max(x1, x2)
	fmt.Fprintf(b, `<rect class="hit" x="%d" y="%d" width="%d" height="%d" fill="#fff" fill-opacity="0"/>`, lo, y-rowHeight+8, hi-lo, rowHeight-4)
	fmt.Fprintf(b, `<text class="t" x="4" y="%d" font-size="10" fill="#666">+%.3fs</text>`, y, m.Time.Sub(t0).Seconds())
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5" marker-end="url(#arrow-%s)"/>`,
		x1, y, x2, y, kind.color, kind.name)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, (x1+x2)/2, y-5, xmlEscape(arrowLabel(m)))
	b.WriteString("</g></a>\n")
}

// addrOf gives the message's source (src) or destination address.
func addrOf(m *Message, src bool) string {
	local, remote := m.Local.String(), m.Remote.String()
	if (m.Direction == "out") == src {
		return local
	}
	return remote
}

// arrowLabel is the method or status, marked when the message carries SDP
// (where media is negotiated, the first place to look for one-way audio).
func arrowLabel(m *Message) string {
	s := m.Label
	if len(s) > 28 {
		s = s[:25] + "..."
	}
	if m.SDP {
		s += " (SDP)"
	}
	return s
}

// attrEscape is xmlEscape for attribute values: line breaks and tabs as
// character references, which XML attribute normalisation keeps.
func attrEscape(s string) string {
	return strings.NewReplacer("\n", "&#10;", "\t", "&#9;").Replace(xmlEscape(s))
}

// xmlEscape escapes text for XML and replaces what XML 1.0 cannot hold
// (control characters, invalid UTF-8) with U+FFFD, so hostile messages
// cannot break the document.
func xmlEscape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\'':
			b.WriteString("&#39;")
		case r == '\t', r == '\n':
			b.WriteRune(r)
		case r == '\r':
			// dropped: CRLF shows as one line break
		case r < 0x20, r == utf8.RuneError, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r < 0xE000:
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
