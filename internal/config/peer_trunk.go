package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/palisade-sbc/palisade/internal/numbers"
)

// PeerTrunk is how the unit treats a trunk or cloud service beyond its
// address: further targets, keepalive rules, number formats, trust,
// address ranges and offer handling. The zero value is the generic
// behaviour, so a peer written before these settings existed (and every
// list element without "trunk") behaves as it did. The profiles fill it
// (internal/profiles); docs/configuration.md documents every field.
type PeerTrunk struct {
	// Targets are further names or addresses of the peer (host[:port]),
	// tried in this order after address/domain when those do not answer;
	// each is resolved like address/domain (DNS override, RFC 3263).
	Targets []string `json:"targets"`
	// Ranges are CIDR ranges whose sources are this peer on its interface,
	// besides its resolved addresses and certificate names.
	Ranges    []string      `json:"ranges"`
	Keepalive PeerKeepalive `json:"keepalive"`
	Numbers   PeerNumbers   `json:"numbers"`
	Trust     PeerTrust     `json:"trust"`
	Offer     PeerOffer     `json:"offer"`
	// HistoryInfo is what happens to History-Info towards this peer:
	// strip | keep | rewrite; "" = strip under sip.topology_hiding, keep
	// otherwise.
	HistoryInfo string `json:"history_info"`
	// OwnAllow sends the unit's own Allow header (REFER only when the unit
	// handles REFER itself) towards this peer instead of the other leg's.
	OwnAllow bool `json:"own_allow"`
}

// IsZero reports whether t is the generic behaviour (empty lists count as
// absent), so that a peer without trunk settings is written without them.
func (t PeerTrunk) IsZero() bool {
	k, n, o := t.Keepalive, t.Numbers, t.Offer
	return len(t.Targets) == 0 && len(t.Ranges) == 0 && k.Up == "" && len(k.Headers) == 0 && k.DownAfter == 0 &&
		len(n.Outbound) == 0 && len(n.Inbound) == 0 && !n.UserPhone && t.Trust == (PeerTrust{}) &&
		!o.Required && len(o.Codecs) == 0 && t.HistoryInfo == "" && !t.OwnAllow
}

// PeerKeepalive refines the OPTIONS keepalive of options_interval.
type PeerKeepalive struct {
	// Up is which answers mean "up": "any" (every answer but 408 and 5xx:
	// the peer's SIP stack is alive) or "2xx" (only a success, as Teams
	// Direct Routing requires); "" = "any".
	Up string `json:"up"`
	// Headers are added to keepalive OPTIONS only, after the peer's headers.
	Headers map[string]string `json:"headers,omitempty"`
	// DownAfter is how many failed keepalives in a row take a target out;
	// 0 = 3.
	DownAfter int `json:"down_after"`
}

// PeerNumbers are the number normalisation rules of a peer, per direction.
type PeerNumbers struct {
	Outbound []NumberRule `json:"outbound"` // requests sent to the peer
	Inbound  []NumberRule `json:"inbound"`  // requests received from the peer
	// UserPhone adds user=phone to SIP URIs with a telephone number sent to
	// the peer.
	UserPhone bool `json:"user_phone"`
}

// NumberRule is one rewriting step; see numbers.Rule (the same fields).
type NumberRule struct {
	Fields      []string `json:"fields"` // request_uri | to | from | pai; [] = all
	Match       string   `json:"match"`  // RE2, whole number; "" = every number
	Replace     string   `json:"replace"`
	StripPrefix string   `json:"strip_prefix"`
	AddPrefix   string   `json:"add_prefix"`
}

// PeerTrust widens what the unit accepts from this peer's certificate.
type PeerTrust struct {
	// SystemRoots trusts the system's public roots (Debian ca-certificates)
	// for this peer, in addition to the CA store.
	SystemRoots bool `json:"system_roots"`
	// ServerAuthClientCert accepts, when this peer connects to the unit, a
	// certificate whose extended key usage has serverAuth but not
	// clientAuth (public CAs issue only serverAuth from 2026).
	ServerAuthClientCert bool `json:"server_auth_client_cert"`
}

// PeerOffer is how the unit handles session offers towards this peer.
type PeerOffer struct {
	// Required: the peer needs an SDP offer in every INVITE (no delayed
	// offer); the unit makes one for INVITEs without SDP.
	Required bool `json:"required"`
	// Codecs of offers the unit makes, in preference order; [] = PCMU, PCMA,
	// telephone-event.
	Codecs []string `json:"codecs"`
}

// Valid values of the trunk settings (docs/configuration.md).
var (
	KeepaliveUp      = []string{"any", "2xx"}
	HistoryInfoModes = []string{"strip", "keep", "rewrite"}
	OfferCodecs      = []string{"PCMU", "PCMA", "G722", "G729", "opus", "telephone-event"}
	// DefaultOfferCodecs are the codecs of a made offer when offer.codecs is [].
	DefaultOfferCodecs = []string{"PCMU", "PCMA", "telephone-event"}
)

// NumberRules converts the rules for the numbers package.
func NumberRules(rs []NumberRule) []numbers.Rule {
	out := make([]numbers.Rule, len(rs))
	for i, r := range rs {
		out[i] = numbers.Rule(r)
	}
	return out
}

// peerTrunk validates p (the path of peers[i].trunk).
func (v *validator) peerTrunk(p string, t PeerTrunk) {
	for i, h := range t.Targets {
		v.hostPort(fmt.Sprintf("%s.targets[%d]", p, i), h, false)
	}
	v.uniqueStrings(p+".targets", t.Targets)
	for i, r := range t.Ranges {
		path := fmt.Sprintf("%s.ranges[%d]", p, i)
		pf, err := netip.ParsePrefix(strings.TrimSpace(r))
		switch {
		case err != nil:
			v.add(path, "%q is not a CIDR range such as 52.112.0.0/14", r)
		case pf.Masked() != pf:
			v.add(path, "%q has host bits set; the range is %s", r, pf.Masked())
		}
	}
	v.uniqueStrings(p+".ranges", t.Ranges)
	k := t.Keepalive
	if k.Up != "" {
		v.enum(p+".keepalive.up", k.Up, KeepaliveUp)
	}
	if k.DownAfter < 0 || k.DownAfter > 100 {
		v.add(p+".keepalive.down_after", "%d is outside 0-100", k.DownAfter)
	}
	v.headerMap(p+".keepalive.headers", k.Headers)
	for _, d := range []struct {
		name  string
		rules []NumberRule
	}{{"outbound", t.Numbers.Outbound}, {"inbound", t.Numbers.Inbound}} {
		for i, r := range d.rules {
			if err := numbers.Check(numbers.Rule(r)); err != nil {
				v.add(fmt.Sprintf("%s.numbers.%s[%d]", p, d.name, i), "%v", err)
			}
		}
	}
	v.enumSet(p+".offer.codecs", t.Offer.Codecs, OfferCodecs)
	if t.HistoryInfo != "" {
		v.enum(p+".history_info", t.HistoryInfo, HistoryInfoModes)
	}
}

// anyPeerTrustsSystem reports whether some peer trusts the system's roots
// (then a TLS listener can accept client certificates with an empty CA
// store).
func anyPeerTrustsSystem(peers []Peer) bool {
	for _, p := range peers {
		if p.Trunk.Trust.SystemRoots {
			return true
		}
	}
	return false
}

// trunkWarnings lists trunk settings of the peer at path that are valid
// but do nothing, or widen trust.
func trunkWarnings(path string, p Peer, add func(path, format string, args ...any)) {
	t := p.Trunk
	k := t.Keepalive
	if p.OptionsInterval == 0 && (k.Up != "" || len(k.Headers) > 0 || k.DownAfter != 0) {
		add(path+".trunk.keepalive", "has no effect: options_interval is 0 (no keepalive)")
	}
	if p.Transport != "tls" && p.Transport != "any" && (t.Trust.SystemRoots || t.Trust.ServerAuthClientCert) {
		add(path+".trunk.trust", "has no effect: the peer's transport is %s, not tls", p.Transport)
	}
	if t.Trust.SystemRoots {
		add(path+".trunk.trust.system_roots", "is on: every public CA the operating system trusts may vouch for this peer's names")
	}
}
