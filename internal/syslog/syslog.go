// Package syslog sends the unit's logs and call records to remote syslog
// collectors: RFC 5424 messages over UDP (RFC 5426), TCP (RFC 6587 octet
// counting) or TLS (RFC 5425), configured in observe.syslog. Every
// collector has its own sender goroutine behind a bounded queue, so a
// collector that is slow or down costs dropped (and counted) messages,
// never a blocked call or log statement. docs/operations.md.
package syslog

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// SubsystemName is the name the unit knows the service by.
const SubsystemName = "syslog"

// TLSConfigs gives the TLS client configuration for a collector: trust
// and own certificate as for outgoing SIP TLS (pki.Provider does).
type TLSConfigs interface {
	ClientConfig(serverName string) (*tls.Config, error)
}

// Service is the remote-syslog subsystem.
type Service struct {
	certs TLSConfigs
	log   *slog.Logger
	pid   int

	mu    sync.Mutex // serialises Apply and Close
	dests map[config.SyslogDestination]*destination
	cur   atomic.Pointer[state]
}

// state is what the hot paths (a log record, a call record) read.
type state struct {
	hostname string
	dests    []*destination
	minLevel slog.Level // lowest level any destination takes; MaxInt when none takes logs
}

// New returns the service; nothing is sent before Apply names collectors.
func New(certs TLSConfigs, log *slog.Logger) *Service {
	s := &Service{certs: certs, log: log.With("subsystem", SubsystemName), pid: os.Getpid(),
		dests: map[config.SyslogDestination]*destination{}}
	s.cur.Store(&state{minLevel: math.MaxInt})
	return s
}

// Name implements unit.Subsystem.
func (s *Service) Name() string { return SubsystemName }

// Apply switches to cfg's collectors. Unchanged destinations keep their
// connection and queue; TLS settings are renewed for the next connect.
func (s *Service) Apply(_ context.Context, cfg *config.Config) error {
	sc := cfg.Observe.Syslog
	// Everything that can fail comes before any change.
	tlsConfs := map[config.SyslogDestination]*tls.Config{}
	for _, d := range sc.Destinations {
		if d.Transport != "tls" {
			continue
		}
		name := d.ServerName
		if name == "" {
			host, _, err := net.SplitHostPort(d.Address)
			if err != nil {
				return fmt.Errorf("syslog destination %s: %w", d.Address, err)
			}
			name = host
		}
		tc, err := s.certs.ClientConfig(name)
		if err != nil {
			return fmt.Errorf("syslog destination tls://%s: %w", d.Address, err)
		}
		tlsConfs[d] = withNameCheck(tc, name)
	}
	hostname := sc.Hostname
	if hostname == "" {
		hostname, _ = os.Hostname()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[config.SyslogDestination]*destination{}
	st := &state{hostname: hostname, minLevel: math.MaxInt}
	for _, dc := range sc.Destinations {
		d := s.dests[dc]
		if d == nil {
			d = newDestination(dc, s.log)
			if tc := tlsConfs[dc]; tc != nil {
				d.tlsConf.Store(tc)
			}
			d.start()
		} else if tc := tlsConfs[dc]; tc != nil {
			d.tlsConf.Store(tc)
		}
		next[dc] = d
		st.dests = append(st.dests, d)
		if dc.Logs && d.minLevel < st.minLevel {
			st.minLevel = d.minLevel
		}
	}
	old := s.dests
	s.dests = next
	s.cur.Store(st)
	if st.minLevel != math.MaxInt {
		active.Store(s)
	} else {
		active.CompareAndSwap(s, nil)
	}
	for dc, d := range old {
		if next[dc] == nil {
			d.close()
		}
	}
	return nil
}

// Drain waits (until ctx ends) for the queued messages to be sent.
func (s *Service) Drain(ctx context.Context) error {
	var errs []error
	for _, d := range s.cur.Load().dests {
		errs = append(errs, d.drain(ctx))
	}
	return errors.Join(errs...)
}

// Close stops every sender.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	active.CompareAndSwap(s, nil)
	s.cur.Store(&state{minLevel: math.MaxInt})
	for _, d := range s.dests {
		d.close()
	}
	s.dests = map[config.SyslogDestination]*destination{}
	return nil
}

// CallRecord sends a finished call's record to the collectors that take
// call records (observe.Recorder.Notify); it never blocks.
func (s *Service) CallRecord(c observe.CDR) {
	st := s.cur.Load()
	var body []byte
	for _, d := range st.dests {
		if !d.cfg.CallRecords {
			continue
		}
		if body == nil {
			var err error
			if body, err = json.Marshal(c); err != nil {
				return
			}
		}
		d.enqueue(message{b: format(d.facility, sevInfo, c.End, st.hostname, s.pid, msgIDCDR, body), kind: msgIDCDR})
	}
}

// logLine sends one log record (a text-handler line) to the collectors
// that take logs at its level.
func (s *Service) logLine(line []byte) {
	st := s.cur.Load()
	level, msg := levelOf(line)
	if level < st.minLevel {
		return
	}
	now := time.Now()
	for _, d := range st.dests {
		if d.cfg.Logs && level >= d.minLevel {
			d.enqueue(message{b: format(d.facility, severity(level), now, st.hostname, s.pid, msgIDLog, msg), kind: msgIDLog})
		}
	}
}

// withNameCheck makes the collector's certificate carry name (RFC 5425
// §5.2), whatever tls.check_server_domain says for SIP peers, and sends
// the name as SNI.
func withNameCheck(tc *tls.Config, name string) *tls.Config {
	tc = tc.Clone()
	if net.ParseIP(name) == nil {
		tc.ServerName = name
	}
	inner := tc.VerifyConnection
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if inner != nil {
			if err := inner(cs); err != nil {
				return err
			}
		}
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the collector sent no certificate")
		}
		return cs.PeerCertificates[0].VerifyHostname(name)
	}
	return tc
}
