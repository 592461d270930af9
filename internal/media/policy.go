package media

import (
	"fmt"
	"slices"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// Requirement values of a media encryption policy.
const (
	RequireRTP    = "rtp"    // plain RTP only
	RequireSRTP   = "srtp"   // SRTP only
	RequireEither = "either" // SRTP when the peer does it, plain RTP otherwise
)

// RTP profiles to offer on a leg where SRTP is optional.
const (
	ProfileAVP        = "avp"         // RTP/AVP without a=crypto
	ProfileSAVP       = "savp"        // RTP/SAVP with a=crypto
	ProfilePreferSAVP = "prefer-savp" // RTP/AVP with a=crypto (best-effort SRTP)
)

// Policy is the media encryption policy that applies to one leg: what the
// SIP layer can ask for with Relay.PolicyFor (e.g. to show it in status).
type Policy struct {
	Interface   string   // the interface the leg uses
	Requirement string   // rtp | srtp | either
	Suites      []string // SRTP suites we offer and accept, in preference order
	Profile     string   // avp | savp | prefer-savp (used where SRTP is optional)
	// AllowTranscoding lets one leg be RTP while the other is SRTP. Without it
	// an "either" leg follows the other leg, and a call whose legs cannot
	// match is refused.
	AllowTranscoding bool
	// Peer is the peer the leg faces when the policy is that peer's own
	// (peers[].media), else "".
	Peer string
	// Source names the configuration entry the policy comes from
	// ("media.policies[0]", "media.default_policy" or "peers[1].media"),
	// so that a refused call tells the administrator what to change.
	Source string
}

// describe names the policy for error messages: where it is configured and
// what it requires.
func (p Policy) describe() string {
	src := p.Source
	if src == "" {
		src = "media.default_policy"
	}
	if p.Peer != "" {
		return fmt.Sprintf("peer %q on interface %q, policy %s (requirement %s)", p.Peer, p.Interface, src, p.Requirement)
	}
	return fmt.Sprintf("interface %q, policy %s (requirement %s)", p.Interface, src, p.Requirement)
}

// hintSRTP says how to let plain RTP through on the policy's interface.
func (p Policy) hintSRTP() string {
	if p.Peer != "" {
		return fmt.Sprintf("set %s.requirement to \"either\" (or \"rtp\") to allow plain RTP with peer %q", p.Source, p.Peer)
	}
	if p.Source == "" || p.Source == "media.default_policy" {
		return "set media.default_policy.requirement to \"either\" (or \"rtp\") to allow plain RTP"
	}
	return fmt.Sprintf("set %s.requirement to \"either\" or remove that entry from media.policies to allow plain RTP", p.Source)
}

// allowsRTP reports whether plain RTP is acceptable on the leg.
func (p Policy) allowsRTP() bool { return p.Requirement != RequireSRTP }

// allowsSRTP reports whether SRTP is acceptable on the leg.
func (p Policy) allowsSRTP() bool { return p.Requirement != RequireRTP && len(p.Suites) > 0 }

func (p Policy) accepts(suite string) bool { return slices.Contains(p.Suites, suite) }

// policies is the compiled media section: one Policy per interface plus
// the default, and the peers' own settings laid over them.
type policies struct {
	byIface map[string]Policy
	def     Policy
	byPeer  map[string]peerPolicy
	groups  map[string][]string // SRTP suites by crypto suite group
	enabled bool                // media.encryption_enabled
}

// peerPolicy is a peer's own media settings (peers[].media); an empty field
// takes the interface's value.
type peerPolicy struct {
	source             string // "peers[1].media"
	group, requirement string
}

func compilePolicies(m config.Media, peers []config.Peer) policies {
	groups := map[string][]string{}
	for _, g := range m.CryptoSuiteGroups {
		for _, s := range g.Suites {
			if sdp.KeyLen(s) > 0 { // drops "cleartext" and anything unknown
				groups[g.Name] = append(groups[g.Name], s)
			}
		}
	}
	d := m.DefaultPolicy
	mk := func(src, iface, group, req string) Policy {
		p := Policy{Interface: iface, Requirement: req, Suites: groups[group],
			Profile: d.RTPProfile, AllowTranscoding: d.AllowTranscoding, Source: src}
		if p.Requirement == "" {
			p.Requirement = RequireRTP
		}
		if p.Profile == "" {
			p.Profile = ProfilePreferSAVP
		}
		if !m.EncryptionEnabled {
			// Media encryption switched off: every leg is plain RTP.
			p.Requirement, p.Suites = RequireRTP, nil
		}
		return p
	}
	ps := policies{byIface: map[string]Policy{}, def: mk("media.default_policy", "", d.Group, d.Requirement),
		byPeer: map[string]peerPolicy{}, groups: groups, enabled: m.EncryptionEnabled}
	for i, p := range m.Policies {
		ps.byIface[p.Interface] = mk(fmt.Sprintf("media.policies[%d]", i), p.Interface, p.Group, p.Requirement)
	}
	for i, p := range peers {
		if p.Media.Set() {
			ps.byPeer[p.Name] = peerPolicy{source: fmt.Sprintf("peers[%d].media", i), group: p.Media.Group, requirement: p.Media.Requirement}
		}
	}
	return ps
}

// forLeg is the policy of a leg on interface iface facing peer ("" = no
// configured peer): the peer's own settings over the interface's.
func (ps policies) forLeg(iface, peer string) Policy {
	p := ps.forInterface(iface)
	pp, ok := ps.byPeer[peer]
	if !ok || !ps.enabled { // encryption off: every leg is plain RTP
		return p
	}
	p.Peer, p.Source = peer, pp.source
	if pp.group != "" {
		p.Suites = ps.groups[pp.group]
	}
	if pp.requirement != "" {
		p.Requirement = pp.requirement
	}
	return p
}

func (ps policies) forInterface(iface string) Policy {
	if p, ok := ps.byIface[iface]; ok {
		return p
	}
	p := ps.def
	p.Interface = iface
	return p
}
