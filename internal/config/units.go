package config

import (
	"fmt"
	"sort"
	"strings"
)

// UnitSettings are one cluster unit's own values (units.<name>): on that
// unit they replace the shared ones; empty fields keep the shared value.
type UnitSettings struct {
	// Name replaces unit.name (what the admin shows).
	Name string `json:"name"`
	// AdminListen replaces admin.listen.
	AdminListen string `json:"admin_listen"`
	// Interfaces replace the network.interfaces of the same name (address,
	// advertised_address, fqdn); every name must exist in the shared list.
	Interfaces []Interface `json:"interfaces"`
	// Listeners, when not empty, replace sip.listeners as a whole.
	Listeners []Listener `json:"listeners"`
	// MediaPortMin and MediaPortMax, when not 0, replace media.port_min
	// and media.port_max.
	MediaPortMin int `json:"media_port_min"`
	MediaPortMax int `json:"media_port_max"`
}

// ForUnit returns the configuration unit runs: a copy of c with the
// values of units.<unit> in place of the shared ones. The copy keeps the
// units section; c is not changed.
func (c *Config) ForUnit(unit string) (*Config, error) {
	out, err := Clone(c)
	if err != nil {
		return nil, err
	}
	u, ok := c.Units[unit]
	if !ok {
		return out, nil
	}
	if u.Name != "" {
		out.Unit.Name = u.Name
	}
	if u.AdminListen != "" {
		out.Admin.Listen = u.AdminListen
	}
	for _, ui := range u.Interfaces {
		found := false
		for i := range out.Network.Interfaces {
			if out.Network.Interfaces[i].Name == ui.Name {
				out.Network.Interfaces[i] = ui
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("units.%s.interfaces: no network interface named %q", unit, ui.Name)
		}
	}
	if len(u.Listeners) > 0 {
		out.SIP.Listeners = append([]Listener(nil), u.Listeners...)
	}
	if u.MediaPortMin != 0 {
		out.Media.PortMin = u.MediaPortMin
	}
	if u.MediaPortMax != 0 {
		out.Media.PortMax = u.MediaPortMax
	}
	return out, nil
}

// validUnitName: the names palisade run --unit accepts.
func validUnitName(s string) bool {
	if s == "" || len(s) > 63 || strings.HasPrefix(s, ".") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ValidUnitName reports whether s may name a unit of a cluster.
func ValidUnitName(s string) bool { return validUnitName(s) }

// units validates every unit's configuration as that unit will run it;
// problems the shared document has already are reported once, there.
func (v *validator) units() {
	if len(v.c.Units) == 0 {
		return
	}
	base := map[string]bool{}
	for _, e := range v.errs {
		base[e.Path+"\x00"+e.Message] = true
	}
	names := make([]string, 0, len(v.c.Units))
	for n := range v.c.Units {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := "units." + n
		if !validUnitName(n) {
			v.errs = append(v.errs, FieldError{Path: p, Message: "a unit name has letters, digits, '-', '_' and '.' (at most 63)"})
			continue
		}
		uc, err := v.c.ForUnit(n)
		if err != nil {
			v.errs = append(v.errs, FieldError{Path: p + ".interfaces", Message: err.Error()})
			continue
		}
		uc.Units = nil
		for _, e := range uc.Validate() {
			if !base[e.Path+"\x00"+e.Message] {
				v.errs = append(v.errs, FieldError{Path: p, Message: "on this unit: " + e.Path + ": " + e.Message})
			}
		}
	}
}
