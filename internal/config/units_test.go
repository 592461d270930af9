package config

import (
	"strings"
	"testing"
)

func TestForUnit(t *testing.T) {
	c := Default()
	c.Units = map[string]UnitSettings{
		"a": {Name: "edge-a", AdminListen: "127.0.0.1:9443",
			Interfaces:   []Interface{{Name: c.Network.Interfaces[0].Name, Address: "127.0.0.10"}},
			MediaPortMin: 50000, MediaPortMax: 50099},
	}
	a, err := c.ForUnit("a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Unit.Name != "edge-a" || a.Admin.Listen != "127.0.0.1:9443" || a.Network.Interfaces[0].Address != "127.0.0.10" ||
		a.Media.PortMin != 50000 || a.Media.PortMax != 50099 {
		t.Fatalf("unit a runs %+v %+v %+v %+v", a.Unit, a.Admin.Listen, a.Network.Interfaces[0], a.Media)
	}
	if c.Unit.Name == "edge-a" || c.Network.Interfaces[0].Address == "127.0.0.10" {
		t.Fatal("ForUnit changed the shared document")
	}
	b, err := c.ForUnit("b") // no section: the shared values
	if err != nil || !Equal(b, c) {
		t.Fatalf("unit without a section: %v", err)
	}
	if errs := c.Validate(); errs != nil {
		t.Fatalf("valid units section refused: %v", errs)
	}
}

func TestUnitsValidation(t *testing.T) {
	tests := []struct {
		name  string
		units map[string]UnitSettings
		want  string
	}{
		{"bad unit name", map[string]UnitSettings{"a b": {}}, "units.a b"},
		{"unknown interface", map[string]UnitSettings{"a": {Interfaces: []Interface{{Name: "nowhere", Address: "127.0.0.1"}}}}, `no network interface named "nowhere"`},
		{"bad address", map[string]UnitSettings{"a": {Interfaces: []Interface{{Name: "inside", Address: "not-an-ip"}}}}, "units.a: on this unit: network.interfaces[0].address"},
		{"bad ports", map[string]UnitSettings{"a": {MediaPortMin: 60000, MediaPortMax: 50000}}, "units.a: on this unit: media."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Units = tt.units
			errs := c.Validate()
			if errs == nil || !strings.Contains(errs.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", errs, tt.want)
			}
		})
	}
}
