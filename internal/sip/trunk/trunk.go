// Package trunk holds the small per-peer rules of the B2BUA's trunk legs
// that need no state: the unit's own Allow header, what happens to
// History-Info towards a peer, and the Request-URI of a transfer's new leg
// built from a Refer-To. The B2BUA calls them where it builds requests to
// a peer (config peers[].trunk).
package trunk

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Allow is the unit's own Allow header value (config trunk.own_allow):
// the methods the unit handles as a B2BUA, with REFER only when it handles
// REFER itself, so that a peer such as Teams sends REFER exactly when the
// unit will act on it ("Direct Routing - SIP protocol": Teams decides how
// to transfer from the SBC's Allow).
func Allow(handlesRefer bool) string {
	m := []string{"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "PRACK", "UPDATE", "INFO", "NOTIFY"}
	if handlesRefer {
		m = append(m, "REFER")
	}
	return strings.Join(m, ", ")
}

// History-Info modes (config trunk.history_info).
const (
	HistoryStrip   = "strip"
	HistoryKeep    = "keep"
	HistoryRewrite = "rewrite"
)

// HistoryMode resolves "" to strip under topology hiding, keep otherwise.
func HistoryMode(mode string, topologyHiding bool) string {
	if mode != "" {
		return mode
	}
	if topologyHiding {
		return HistoryStrip
	}
	return HistoryKeep
}

// HistoryInfo returns the History-Info values (RFC 7044) to send to a peer
// from those received, under mode (after HistoryMode): strip sends none,
// keep sends them as they are, rewrite keeps every entry (user, index,
// parameters and the Reason or Privacy header of its URI, so the
// diversion numbers survive) but replaces the host and port of its URI by
// host, the unit's name on the peer's side, so no inside address leaves.
// An entry rewrite cannot parse is left out rather than leaked.
func HistoryInfo(mode string, values []string, host string) []string {
	switch mode {
	case HistoryKeep:
		return values
	case HistoryRewrite:
	default:
		return nil
	}
	var out []string
	for _, v := range values {
		var kept []string
		for _, e := range splitEntries(v) {
			if r, ok := rewriteEntry(e, host); ok {
				kept = append(kept, r)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, ", "))
		}
	}
	return out
}

// splitEntries splits a header value at the commas outside <> and quotes.
func splitEntries(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' && depth == 0 && (i == 0 || v[i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// rewriteEntry replaces the host of the URI of one hi-entry.
func rewriteEntry(e, host string) (string, bool) {
	i := strings.IndexByte(e, '<')
	j := strings.LastIndexByte(e, '>')
	if i < 0 || j < i {
		return "", false
	}
	if strings.ContainsAny(e[i+1:j], "<>\",") {
		return "", false // not one URI
	}
	uri, headers, hasHeaders := strings.Cut(e[i+1:j], "?")
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil || u.Host == "" {
		return "", false
	}
	u.Host, u.Port = host, 0
	for _, p := range []string{"maddr", "received"} {
		u.UriParams.Remove(p)
	}
	s := u.String()
	// What goes out must read back as the unit's host: an entry the
	// parser took apart differently from how it writes it is left out.
	var back sip.Uri
	if err := sip.ParseUri(s, &back); err != nil || back.Host != host || back.Port != 0 || strings.ContainsAny(headers, "<>") {
		return "", false
	}
	if hasHeaders {
		s += "?" + headers
	}
	return e[:i+1] + s + e[j:], true
}

// MaxReferTo bounds the Refer-To a transfer accepts: a real one is a few
// hundred bytes (Teams' x-m and x-t included); a 10 KB one is refused
// with 400 rather than carried into a new call.
const MaxReferTo = 2048

// ErrReferTooLong is wrapped when a Refer-To exceeds MaxReferTo.
var ErrReferTooLong = errors.New("Refer-To is too long")

// CheckReferTo refuses a Refer-To value over MaxReferTo.
func CheckReferTo(v string) error {
	if len(v) > MaxReferTo {
		return fmt.Errorf("%w (%d bytes, at most %d)", ErrReferTooLong, len(v), MaxReferTo)
	}
	return nil
}

// transportParams are the URI parameters that describe how to reach a
// target (RFC 3261 §19.1.1), not who it is: the new leg's hop decides
// those. method is the REFER's business, not the new INVITE's.
var transportParams = map[string]bool{"transport": true, "maddr": true, "ttl": true, "lr": true, "method": true}

// NewLegURI is the Request-URI of the INVITE a transfer sends: the
// Refer-To target with its identifying parameters kept — user=phone, and
// the x-m (the target's MRI) and x-t (tenant) that Teams puts in Refer-To
// and needs back to find a Teams user — and the host, port and transport
// of the hop the routing chose. Without a hop (host "") the Refer-To's own
// host and port stay.
func NewLegURI(referTo sip.Uri, host string, port int, transport string) sip.Uri {
	u := *referTo.Clone()
	u.Headers = nil
	var params sip.HeaderParams
	for _, kv := range referTo.UriParams {
		if !transportParams[strings.ToLower(kv.K)] {
			params = append(params, kv)
		}
	}
	if host != "" {
		u.Host, u.Port = host, port
		if transport != "" && transport != "udp" {
			params = append(params, sip.HeaderKV{K: "transport", V: transport})
		}
	}
	u.UriParams = params
	return u
}
