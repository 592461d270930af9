package config

import (
	"strings"
	"testing"
	"time"
)

func TestHAValidation(t *testing.T) {
	ok := func(c *Config) {
		c.HA.Floating = []Floating{{Interface: "inside", Link: "lo"}, {Interface: "outside", Link: "eth0", PrefixLength: 24}}
		c.HA.Preference = []string{"a", "b"}
	}
	tests := []struct {
		name string
		edit func(c *Config)
		want string // "" = valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"unknown interface", func(c *Config) { c.HA.Floating[0].Interface = "nowhere" }, `ha.floating[0].interface: no network interface named "nowhere"`},
		{"twice", func(c *Config) { c.HA.Floating[1].Interface = "inside" }, "ha.floating[1].interface"},
		{"no link", func(c *Config) { c.HA.Floating[0].Link = "" }, "ha.floating[0].link"},
		{"bad link", func(c *Config) { c.HA.Floating[0].Link = "eth0/1" }, "ha.floating[0].link"},
		{"prefix too long", func(c *Config) { c.HA.Floating[1].PrefixLength = 33 }, "ha.floating[1].prefix_length"},
		{"unspecified", func(c *Config) { c.Network.Interfaces[0].Address = "0.0.0.0" }, "ha.floating[0].interface: the address"},
		{"short lease", func(c *Config) { c.HA.Lease = Duration(500 * time.Millisecond) }, "ha.lease"},
		{"bad unit", func(c *Config) { c.HA.Preference = []string{"a b"} }, "ha.preference[0]"},
		{"unit twice", func(c *Config) { c.HA.Preference = []string{"a", "a"} }, "ha.preference[1]"},
		{"move mode", func(c *Config) { c.HA.Mode = "move" }, ""},
		{"rehome mode", func(c *Config) { c.HA.Mode, c.HA.Floating = "rehome", nil }, ""},
		{"rehome with floating addresses", func(c *Config) { c.HA.Mode = "rehome" }, `ha.floating: must be empty with ha.mode "rehome"`},
		{"rehome short lease", func(c *Config) {
			c.HA.Mode, c.HA.Floating, c.HA.Lease = "rehome", nil, Duration(500*time.Millisecond)
		}, "ha.lease"},
		{"unknown mode", func(c *Config) { c.HA.Mode = "vrrp" }, `ha.mode: "vrrp"`},
		{"unit moves a floating address", func(c *Config) {
			c.Units = map[string]UnitSettings{"b": {Interfaces: []Interface{{Name: "inside", Address: "127.0.0.9"}}}}
		}, "units.b.interfaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			ok(c)
			tt.edit(c)
			errs := c.Validate()
			switch {
			case tt.want == "" && errs != nil:
				t.Fatalf("valid section refused: %v", errs)
			case tt.want != "" && (errs == nil || !strings.Contains(errs.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", errs, tt.want)
			}
		})
	}
	c := Default()
	ok(c)
	p, err := c.FloatingPrefix(c.HA.Floating[1])
	if err != nil || p.String() != "127.0.0.2/24" {
		t.Fatalf("FloatingPrefix = %v, %v", p, err)
	}
}
