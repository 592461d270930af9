// Package dnstest runs a small authoritative DNS server on loopback for
// tests of RFC 3263 resolution (miekg/dns).
package dnstest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Server answers from a fixed set of records and counts queries.
type Server struct {
	Addr    string // 127.0.0.1:port
	srv     *dns.Server
	mu      sync.Mutex
	records map[string][]dns.RR // "name/type" → records
	queries atomic.Int64
}

// Start serves the zone given as RR strings ("a.test. 60 IN A 127.0.0.1").
func Start(rrs ...string) (*Server, error) {
	s := &Server{records: map[string][]dns.RR{}}
	for _, r := range rrs {
		rr, err := dns.NewRR(r)
		if err != nil {
			return nil, err
		}
		k := key(rr.Header().Name, rr.Header().Rrtype)
		s.records[k] = append(s.records[k], rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = pc.LocalAddr().String()
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	go s.srv.ActivateAndServe() //nolint:errcheck
	<-started
	return s, nil
}

func key(name string, t uint16) string {
	return strings.ToLower(dns.Fqdn(name)) + "/" + dns.TypeToString[t]
}

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) == 1 {
		q := r.Question[0]
		s.mu.Lock()
		m.Answer = append(m.Answer, s.records[key(q.Name, q.Qtype)]...)
		s.mu.Unlock()
		if len(m.Answer) == 0 {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

// Queries returns how many queries the server answered.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Close stops the server.
func (s *Server) Close() { _ = s.srv.Shutdown() }
