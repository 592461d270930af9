package pki

import (
	"context"
	"fmt"
	"net"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// DefaultName is the private certificate the default configuration uses for
// the outside TLS listener and as the client certificate.
const DefaultName = "default"

// EnsureDefault gives the private entry "default" a key and a self-signed
// ECDSA P-256 certificate when cfg lists that entry and the store holds no
// material for it — what 'palisade run' needs on an empty data directory
// (call it before the first Apply). The certificate is for the outside
// interface: its FQDN, else its advertised or bind address. cfg's entry is
// updated to name the new material (changed = true); callers that keep cfg as
// the preliminary or saved document may store it, but need not: an entry
// without material resolves to the newest material of its name.
func EnsureDefault(ctx context.Context, st store.Store, cfg *config.Config) (changed bool, err error) {
	i := findPrivate(cfg, DefaultName)
	if i < 0 {
		return false, nil
	}
	if _, err := loadPrivate(ctx, st, DefaultName, cfg.Certificates.Private[i].Material); err == nil {
		return false, nil
	}
	subj := defaultSubject(cfg)
	c := &Certs{Store: st}
	if _, err := c.New(ctx, cfg, DefaultName, NewOptions{Subject: subj, KeyType: KeyECDSAP256, SelfSigned: true}); err != nil {
		return false, fmt.Errorf("create the default self-signed certificate: %w", err)
	}
	return true, nil
}

// defaultSubject names the outside interface (or the first interface).
func defaultSubject(cfg *config.Config) Subject {
	var in *config.Interface
	for i := range cfg.Network.Interfaces {
		if cfg.Network.Interfaces[i].Name == "outside" {
			in = &cfg.Network.Interfaces[i]
		}
	}
	if in == nil && len(cfg.Network.Interfaces) > 0 {
		in = &cfg.Network.Interfaces[0]
	}
	s := Subject{CN: "palisade.invalid", O: "Palisade (self-signed)"}
	if in == nil {
		return s
	}
	if in.FQDN != "" {
		s.CN = in.FQDN
	} else {
		s.CN = "palisade-" + in.Name + ".invalid"
	}
	for _, a := range []string{in.AdvertisedAddress, in.Address} {
		if net.ParseIP(a) != nil {
			s.SANs = append(s.SANs, a)
		}
	}
	return s
}
