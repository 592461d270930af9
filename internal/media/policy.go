package media

import (
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
	mk := func(iface, group, req string) Policy {
		p := Policy{Interface: iface, Requirement: req, Suites: groups[group],
			Profile: d.RTPProfile, AllowTranscoding: d.AllowTranscoding}
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
	ps := policies{byIface: map[string]Policy{}, def: mk("", d.Group, d.Requirement)}
	for _, p := range m.Policies {
		ps.byIface[p.Interface] = mk(p.Interface, p.Group, p.Requirement)
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
