package config

import (
	"strings"
	"testing"
)

func TestValidateSyslog(t *testing.T) {
	ok := SyslogDestination{Address: "192.0.2.10:514", Transport: "udp", Logs: true}
	for _, tc := range []struct {
		name string
		mut  func(*Syslog)
		want string // "" = valid; else the path and words of the error
	}{
		{"none", func(*Syslog) {}, ""},
		{"udp logs", func(s *Syslog) { s.Destinations = []SyslogDestination{ok} }, ""},
		{"all fields", func(s *Syslog) {
			s.Hostname = "sbc-1.example.com"
			s.Destinations = []SyslogDestination{{Address: "logs.example.com:6514", Transport: "tls", Facility: "local3",
				Logs: true, LogLevel: "warn", CallRecords: true, ServerName: "collector.example.com", QueueSize: 5000}}
		}, ""},
		{"no port", func(s *Syslog) { d := ok; d.Address = "192.0.2.10"; s.Destinations = []SyslogDestination{d} },
			"observe.syslog.destinations[0].address: \"192.0.2.10\" is not host:port"},
		{"transport", func(s *Syslog) { d := ok; d.Transport = "relp"; s.Destinations = []SyslogDestination{d} },
			"observe.syslog.destinations[0].transport: \"relp\" is not one of udp, tcp, tls"},
		{"facility", func(s *Syslog) { d := ok; d.Facility = "local8"; s.Destinations = []SyslogDestination{d} },
			"observe.syslog.destinations[0].facility: \"local8\""},
		{"level", func(s *Syslog) { d := ok; d.LogLevel = "notice"; s.Destinations = []SyslogDestination{d} },
			"observe.syslog.destinations[0].log_level"},
		{"sends nothing", func(s *Syslog) { d := ok; d.Logs = false; s.Destinations = []SyslogDestination{d} },
			"observe.syslog.destinations[0]: sends nothing"},
		{"queue", func(s *Syslog) { d := ok; d.QueueSize = -1; s.Destinations = []SyslogDestination{d} },
			"observe.syslog.destinations[0].queue_size: -1 is outside"},
		{"server name", func(s *Syslog) { d := ok; d.ServerName = "a b"; s.Destinations = []SyslogDestination{d} },
			"observe.syslog.destinations[0].server_name"},
		{"duplicate", func(s *Syslog) { s.Destinations = []SyslogDestination{ok, ok} },
			"observe.syslog.destinations[1]: udp://192.0.2.10:514 is already a destination at observe.syslog.destinations[0]"},
		{"hostname", func(s *Syslog) { s.Hostname = "two words"; s.Destinations = []SyslogDestination{ok} },
			"observe.syslog.hostname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mut(&c.Observe.Syslog)
			errs := c.Validate()
			got := ""
			for _, e := range errs {
				got += e.Path + ": " + e.Message + "\n"
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("errors:\n%swant %q", got, tc.want)
			}
		})
	}
}
