package config

import "fmt"

// Syslog sends the unit's logs and call records to remote syslog
// collectors in RFC 5424 format (internal/syslog, docs/operations.md).
type Syslog struct {
	// Hostname is the HOSTNAME field of every message; "" = the host name
	// of the machine.
	Hostname     string              `json:"hostname"`
	Destinations []SyslogDestination `json:"destinations"`
}

// SyslogDestination is one collector.
type SyslogDestination struct {
	Address   string `json:"address"`   // host:port of the collector
	Transport string `json:"transport"` // udp | tcp | tls
	Facility  string `json:"facility"`  // kern .. local7; "" = local0
	// Logs sends the unit's log records at LogLevel or above ("" = info).
	Logs     bool   `json:"logs"`
	LogLevel string `json:"log_level"`
	// CallRecords sends every finished call's record (JSON).
	CallRecords bool `json:"call_records"`
	// ServerName is the name the collector's TLS certificate must carry;
	// "" = the host of Address.
	ServerName string `json:"server_name"`
	// QueueSize is how many messages wait while the collector is slow or
	// down; more are dropped and counted. 0 = 1000.
	QueueSize int `json:"queue_size"`
}

// Syslog transports and facilities.
var (
	SyslogTransports = []string{"udp", "tcp", "tls"}
	// SyslogFacilities in RFC 5424 order (the index is the facility code).
	SyslogFacilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
		"uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}
)

// MaxSyslogQueue bounds observe.syslog.destinations[].queue_size.
const MaxSyslogQueue = 1_000_000

func (v *validator) syslog() {
	s := v.c.Observe.Syslog
	if h := s.Hostname; h != "" {
		if len(h) > 255 || !printUSASCII(h) {
			v.add("observe.syslog.hostname", "%q is not 1-255 printable ASCII characters without spaces (RFC 5424 HOSTNAME)", h)
		}
	}
	seen := map[string]int{}
	for i, d := range s.Destinations {
		p := fmt.Sprintf("observe.syslog.destinations[%d]", i)
		v.hostPort(p+".address", d.Address, true)
		v.enum(p+".transport", d.Transport, SyslogTransports)
		if d.Facility != "" {
			v.enum(p+".facility", d.Facility, SyslogFacilities)
		}
		if d.LogLevel != "" {
			v.enum(p+".log_level", d.LogLevel, LogLevels)
		}
		if !d.Logs && !d.CallRecords {
			v.add(p, "sends nothing: set logs, call_records or both")
		}
		if d.ServerName != "" && !hostname(d.ServerName) {
			v.add(p+".server_name", "%q is not a host name", d.ServerName)
		}
		if d.QueueSize < 0 || d.QueueSize > MaxSyslogQueue {
			v.add(p+".queue_size", "%d is outside 0-%d", d.QueueSize, MaxSyslogQueue)
		}
		key := d.Transport + "://" + d.Address
		if j, dup := seen[key]; dup {
			v.add(p, "%s is already a destination at observe.syslog.destinations[%d]", key, j)
		}
		seen[key] = i
	}
}

func printUSASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return s != ""
}
