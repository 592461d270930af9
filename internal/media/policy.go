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
	// Source names the configuration entry the policy comes from
	// ("media.policies[0]" or "media.default_policy"), so that a refused
	// call tells the administrator what to change.
	Source string
}

// describe names the policy for error messages: where it is configured and
// what it requires.
func (p Policy) describe() string {
	src := p.Source
	if src == "" {
		src = "media.default_policy"
	}
	return fmt.Sprintf("interface %q, policy %s (requirement %s)", p.Interface, src, p.Requirement)
}

// hintSRTP says how to let plain RTP through on the policy's interface.
func (p Policy) hintSRTP() string {
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

// policies is the compiled media section: one Policy per interface plus the default.
type policies struct {
	byIface map[string]Policy
	def     Policy
}

func compilePolicies(m config.Media) policies {
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
	ps := policies{byIface: map[string]Policy{}, def: mk("media.default_policy", "", d.Group, d.Requirement)}
	for i, p := range m.Policies {
		ps.byIface[p.Interface] = mk(fmt.Sprintf("media.policies[%d]", i), p.Interface, p.Group, p.Requirement)
	}
	return ps
}

func (ps policies) forInterface(iface string) Policy {
	if p, ok := ps.byIface[iface]; ok {
		return p
	}
	p := ps.def
	p.Interface = iface
	return p
}
