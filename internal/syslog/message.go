package syslog

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// RFC 5424 severities used here (§6.2.1).
const (
	sevError   = 3
	sevWarning = 4
	sevInfo    = 6
	sevDebug   = 7
)

// MSGIDs: what a message carries.
const (
	msgIDLog = "log"
	msgIDCDR = "cdr"
)

const appName = "palisade"

// maxUDP is where a datagram is cut: rsyslog's default message size, and
// above RFC 5426's 2048 octets every receiver should take.
const maxUDP = 8192

// facilityCode is the RFC 5424 code of a facility name; "" is local0.
func facilityCode(name string) int {
	if name == "" {
		name = "local0"
	}
	for i, f := range config.SyslogFacilities {
		if f == name {
			return i
		}
	}
	return 16
}

// severity maps a slog level to an RFC 5424 severity.
func severity(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return sevError
	case l >= slog.LevelWarn:
		return sevWarning
	case l >= slog.LevelInfo:
		return sevInfo
	}
	return sevDebug
}

// format builds one RFC 5424 message (§6): no structured data, MSG as
// given. Header fields that RFC 5424 limits (HOSTNAME 255, APP-NAME 48,
// PROCID 128, MSGID 32 printable ASCII) come from the configuration or
// from constants here.
func format(facility, sev int, t time.Time, hostname string, pid int, msgID string, msg []byte) []byte {
	b := make([]byte, 0, 64+len(hostname)+len(msg))
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(facility*8+sev), 10)
	b = append(b, ">1 "...)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, ' ')
	b = append(b, nilValue(hostname)...)
	b = append(b, ' ')
	b = append(b, appName...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, ' ')
	b = append(b, msgID...)
	b = append(b, " - "...)
	return append(b, msg...)
}

func nilValue(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// levelOf reads the level a text-handler line starts with
// ("level=WARN msg=..."), and returns the line without it.
func levelOf(line []byte) (slog.Level, []byte) {
	rest, ok := strings.CutPrefix(string(line), "level=")
	if !ok {
		return slog.LevelInfo, line
	}
	word, tail, _ := strings.Cut(rest, " ")
	var l slog.Level
	if err := l.UnmarshalText([]byte(word)); err != nil {
		l = slog.LevelInfo
	}
	return l, []byte(strings.TrimRight(tail, "\n"))
}
