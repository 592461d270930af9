package setup

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/profiles"
	"github.com/palisade-sbc/palisade/internal/unit"
)

// Peer names setup gives the two peers.
const (
	PBXPeer  = "pbx"
	ITSPPeer = "itsp"
)

// hashPassword is admin.HashPassword; FuzzCheck swaps in a cheap stand-in,
// since the argon2id hash (19 MiB, 2 passes) would cap it at a few dozen
// inputs per second and says nothing about the answers.
var hashPassword = admin.HashPassword

// Build returns the first configuration for the answers: the defaults, the
// interfaces, the PBX peer, the ITSP profile and a dial plan that sends calls
// from the PBX to the ITSP and back. a must have passed Check.
func Build(a Answers) (*config.Config, error) {
	cfg := config.Default()
	cfg.Unit.Name = a.UnitName
	cfg.Unit.Topology = a.Topology
	hash, err := hashPassword(a.AdminPassword)
	if err != nil {
		return nil, err
	}
	cfg.Admin.PasswordHash = hash

	insideIP, insideNet := splitPrefix(a.InsideAddress)
	cfg.Network.Gateway = a.Gateway
	cfg.Network.DNSServers = []string{}
	if a.DNS != "" {
		for _, d := range strings.Split(a.DNS, ",") {
			cfg.Network.DNSServers = append(cfg.Network.DNSServers, strings.TrimSpace(d))
		}
	}
	inside, outside := "inside", "outside"
	if a.Topology == "one-armed" {
		// One interface serves both roles; everything is bound to it.
		inside, outside = "lan", "lan"
		cfg.Network.Interfaces = []config.Interface{{Name: "lan", Address: insideIP, FQDN: a.OutsideFQDN, AdvertisedAddress: a.OutsideAddr}}
		for i := range cfg.SIP.Listeners {
			cfg.SIP.Listeners[i].Interface = "lan"
		}
		cfg.Media.Policies = []config.MediaPolicy{}
	} else {
		cfg.Network.Interfaces = []config.Interface{
			{Name: "inside", Address: insideIP},
			{Name: "outside", Address: a.OutsideAddr, FQDN: a.OutsideFQDN},
		}
	}
	// The admin listens on the inside address and accepts the inside
	// network (the prefix given, else the /24 around the address).
	if !netip.MustParseAddr(insideIP).IsLoopback() {
		cfg.Admin.Listen = joinHostPort(insideIP, 8443)
		cfg.Admin.AllowedNetworks = append(cfg.Admin.AllowedNetworks, insideNet)
	}

	for i := range cfg.SIP.Listeners {
		if l := &cfg.SIP.Listeners[i]; l.Transport == "tls" && l.Interface == outside {
			l.Certificate = a.Certificate
		}
	}
	pbxPort := 5060
	if a.PBXTransport == "tls" {
		pbxPort = 5061
	}
	ensureListener(cfg, config.Listener{Interface: inside, Transport: a.PBXTransport, Port: pbxPort, Certificate: a.Certificate})
	cfg.Peers = append(cfg.Peers, config.Peer{
		Name: PBXPeer, Kind: "pbx", Profile: profiles.Generic, Type: a.PBXType, Interface: inside,
		Address: a.PBXAddress, Transport: a.PBXTransport, OptionsInterval: config.Duration(60 * time.Second),
	})

	ver, _ := unit.Version()
	err = profiles.Apply(cfg, a.ITSP, profiles.Answers{
		PeerName: ITSPPeer, Interface: outside, Domain: a.ITSPDomain, Address: a.ITSPAddress,
		Transport: a.ITSPTransport, Prefix: a.ITSPPrefix, Username: a.ITSPUsername,
		Password: a.ITSPPassword, Register: a.ITSPRegister, Certificate: a.Certificate, Version: ver,
	})
	if err != nil {
		return nil, err
	}
	if a.Topology == "one-armed" {
		// A per-interface SRTP requirement would also bind the PBX, which
		// shares the interface; the default policy decides for it, the
		// ITSP's own (peers[].media, set by the profile) for the ITSP.
		cfg.Media.Policies = []config.MediaPolicy{}
		if cfg, err = renameInterfaceRefs(cfg, "lan", "sip.restricted_interfaces"); err != nil {
			return nil, err
		}
	}

	toITSP := config.DialRule{Name: "pbx-to-itsp", Source: PBXPeer, Prefix: a.ITSPPrefix,
		ForwardTo: []config.Forward{{Peer: ITSPPeer}}}
	if a.ITSPPrefix == "" {
		toITSP.Regex = "^(.+)$"
		toITSP.ForwardTo[0].Rewrite = "$1"
	}
	cfg.DialPlan.Rules = []config.DialRule{
		toITSP,
		{Name: "itsp-to-pbx", Source: ITSPPeer, Regex: "^(.+)$", ForwardTo: []config.Forward{{Peer: PBXPeer, Rewrite: "$1"}}},
	}
	return cfg, nil
}

func splitPrefix(s string) (ip, network string) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().String(), p.Masked().String()
	}
	addr := netip.MustParseAddr(s)
	bits := 24
	if addr.Is6() {
		bits = 64
	}
	return addr.String(), netip.PrefixFrom(addr, bits).Masked().String()
}

func joinHostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

func ensureListener(cfg *config.Config, l config.Listener) {
	for _, c := range cfg.SIP.Listeners {
		if c.Interface == l.Interface && c.Transport == l.Transport {
			return
		}
	}
	if l.Transport != "tls" {
		l.Certificate = ""
	}
	cfg.SIP.Listeners = append(cfg.SIP.Listeners, l)
}

// renameInterfaceRefs points lists of interface names at the one interface
// of a one-armed unit. It goes by path, so that lists other sections add to
// the defaults (e.g. the interfaces where only peers may start calls) follow
// without setup knowing their Go fields; a path the document lacks is skipped.
func renameInterfaceRefs(cfg *config.Config, to string, paths ...string) (*config.Config, error) {
	for _, p := range paths {
		raw, err := config.Get(cfg, p)
		if err != nil {
			continue
		}
		var names []string
		if json.Unmarshal(raw, &names) != nil || len(names) == 0 {
			continue
		}
		b, _ := json.Marshal([]string{to})
		if cfg, err = config.Set(cfg, p, b); err != nil {
			return nil, fmt.Errorf("one-armed %s: %w", p, err)
		}
	}
	return cfg, nil
}
