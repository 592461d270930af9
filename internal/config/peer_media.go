package config

import (
	"fmt"
	"slices"
)

// PeerMedia is a peer's own media encryption policy. It applies to every
// call leg towards or from the peer, over the policy of the leg's
// interface (media.policies, else media.default_policy), so that a trunk
// that needs SRTP and one that speaks plain RTP can share an interface.
// Each empty field takes the interface's value.
type PeerMedia struct {
	// Group is the crypto suite group (media.crypto_suite_groups) offered
	// and accepted towards the peer; "" = the interface's group.
	Group string `json:"group"`
	// Requirement is rtp | srtp | either; "" = the interface's requirement.
	Requirement string `json:"requirement"`
}

// Set reports whether the peer has a policy of its own (else it relies on
// its interface's).
func (m PeerMedia) Set() bool { return m.Group != "" || m.Requirement != "" }

// MediaPolicyOf is the effective policy of a leg on interface iface: its
// media.policies entry, else media.default_policy. source names the entry.
func (c *Config) MediaPolicyOf(iface string) (group, requirement, source string) {
	for i, p := range c.Media.Policies {
		if p.Interface == iface {
			return p.Group, p.Requirement, fmt.Sprintf("media.policies[%d]", i)
		}
	}
	d := c.Media.DefaultPolicy
	return d.Group, d.Requirement, "media.default_policy"
}

// PeerMediaPolicy is the effective policy of legs towards or from peer p on
// its interface: the peer's own fields over the interface's.
func (c *Config) PeerMediaPolicy(p Peer) (group, requirement string) {
	group, requirement, _ = c.MediaPolicyOf(p.Interface)
	if p.Media.Group != "" {
		group = p.Media.Group
	}
	if p.Media.Requirement != "" {
		requirement = p.Media.Requirement
	}
	return group, requirement
}

// peerMedia validates the media policy of peer pe at path p.
func (v *validator) peerMedia(p string, pe Peer) {
	m := pe.Media
	if !m.Set() {
		return
	}
	if m.Group != "" {
		v.ref(p+".group", m.Group, v.groups, "media.crypto_suite_groups")
	}
	if m.Requirement != "" {
		v.enum(p+".requirement", m.Requirement, Requirements)
	}
	group, req := v.c.PeerMediaPolicy(pe)
	inherited := ""
	if m.Group == "" {
		_, _, src := v.c.MediaPolicyOf(pe.Interface)
		inherited = fmt.Sprintf("%s (interface %s); set %s.group", src, pe.Interface, p)
	}
	v.policyMeets(p+".requirement", group, req, inherited)
}

// policyMeets checks that crypto suite group can meet requirement req.
// inherited, when set, says where the group comes from and how to change
// it: a requirement of "rtp" then needs no cleartext suite in it (the
// group is not used for plain RTP).
func (v *validator) policyMeets(path, group, req, inherited string) {
	i := slices.IndexFunc(v.c.Media.CryptoSuiteGroups, func(g CryptoSuiteGroup) bool { return g.Name == group })
	if i < 0 {
		return
	}
	hasClear, hasSRTP := false, false
	for _, s := range v.c.Media.CryptoSuiteGroups[i].Suites {
		if s == "cleartext" {
			hasClear = true
		} else if oneOf(s, CryptoSuites) {
			hasSRTP = true
		}
	}
	from := ""
	if inherited != "" {
		from = " (the group of " + inherited + ")"
	}
	switch {
	case req == "srtp" && !hasSRTP:
		v.add(path, "srtp needs an SRTP suite, but group %q has none%s", group, from)
	case req == "rtp" && !hasClear && inherited == "":
		v.add(path, "rtp needs the cleartext suite, but group %q lacks it", group)
	}
	if req == "srtp" && !v.c.Media.EncryptionEnabled {
		v.add(path, "srtp is required but media.encryption_enabled is false")
	}
}

// peerMediaWarnings lists a peer's own media policy (at path) that does
// nothing, or whose SRTP keys would travel in clear.
func (c *Config) peerMediaWarnings(path string, p Peer, add func(path, format string, args ...any)) {
	if !p.Media.Set() {
		return
	}
	if !c.Media.EncryptionEnabled {
		add(path, "has no effect: media.encryption_enabled is false (every leg is plain RTP)")
		return
	}
	group, req := c.PeerMediaPolicy(p)
	i := slices.IndexFunc(c.Media.CryptoSuiteGroups, func(g CryptoSuiteGroup) bool { return g.Name == group })
	srtp := i >= 0 && slices.ContainsFunc(c.Media.CryptoSuiteGroups[i].Suites, func(s string) bool { return s != "cleartext" })
	if req != "rtp" && srtp && (p.Transport == "udp" || p.Transport == "tcp") {
		add(path, "SRTP keys (a=crypto) are sent to this peer over %s, unencrypted: use transport tls", p.Transport)
	}
}
