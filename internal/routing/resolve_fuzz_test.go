package routing

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fuzzDNS answers every query with the same message, as a hostile or
// broken DNS server could: the answer's ID (and, when it parses, its
// question) is made to match the query, so that the resolver reads it.
type fuzzDNS struct {
	pc     net.PacketConn
	answer atomic.Pointer[[]byte]
}

func startFuzzDNS(tb testing.TB) *fuzzDNS {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &fuzzDNS{pc: pc}
	tb.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q dns.Msg
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			p := s.answer.Load()
			if p == nil {
				continue
			}
			out := append([]byte(nil), *p...)
			var m dns.Msg
			if m.Unpack(out) == nil {
				m.Id, m.Question, m.Response, m.Compress = q.Id, q.Question, true, true
				if b, err := m.Pack(); err == nil {
					out = b
				}
			}
			if len(out) >= 2 {
				out[0], out[1] = byte(q.Id>>8), byte(q.Id)
			}
			pc.WriteTo(out, from)
		}
	}()
	return s
}

// FuzzResolveAnswers gives the RFC 3263 resolver (NAPTR → SRV → A/AAAA)
// arbitrary DNS answers for a trunk's domain: it may fail, but must not
// panic or hang, and every target it returns is a usable address with a
// transport the SIP layer knows.
func FuzzResolveAnswers(f *testing.F) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		return r
	}
	msg := func(answer []string, extra ...string) []byte {
		m := new(dns.Msg)
		m.SetQuestion("trunk.example.net.", dns.TypeNAPTR)
		m.Response, m.Compress = true, true // under 512 bytes, as a UDP answer must be
		for _, s := range answer {
			m.Answer = append(m.Answer, rr(s))
		}
		for _, s := range extra {
			m.Extra = append(m.Extra, rr(s))
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	full := msg([]string{
		`trunk.example.net. 60 IN NAPTR 10 50 "s" "SIPS+D2T" "" _sips._tcp.trunk.example.net.`,
		`trunk.example.net. 60 IN NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.trunk.example.net.`,
		`_sips._tcp.trunk.example.net. 60 IN SRV 10 60 5061 sip1.trunk.example.net.`,
		`_sips._tcp.trunk.example.net. 60 IN SRV 10 40 5061 sip2.trunk.example.net.`,
		`_sip._udp.trunk.example.net. 60 IN SRV 20 0 5060 sip1.trunk.example.net.`,
		`trunk.example.net. 60 IN A 192.0.2.10`,
		`trunk.example.net. 60 IN AAAA 2001:db8::10`,
	}, `sip1.trunk.example.net. 60 IN A 192.0.2.1`, `sip2.trunk.example.net. 60 IN AAAA 2001:db8::2`)
	seeds := [][]byte{
		full,
		msg([]string{`_sip._udp.trunk.example.net. 0 IN SRV 0 0 0 .`, `trunk.example.net. 0 IN CNAME trunk.example.net.`}),
		msg([]string{`trunk.example.net. 60 IN NAPTR 10 50 "S" "sips+d2t" "" trunk.example.net.`,
			`trunk.example.net. 60 IN SRV 65535 65535 65535 trunk.example.net.`}),
		msg(nil),
		{0, 0, 0x83, 0, 0, 1, 0, 1, 0, 0, 0, 0}, // NXDOMAIN header, counts beyond the data
		{0, 0, 0x82},
	}
	for _, s := range seeds {
		for mode := range uint8(6) {
			f.Add(mode, s)
		}
	}
	srv := startFuzzDNS(f)
	addr := srv.pc.LocalAddr().String()
	hops := []Hop{
		{Scheme: "sip", Host: "trunk.example.net"},
		{Scheme: "sips", Host: "trunk.example.net"},
		{Scheme: "sip", Host: "trunk.example.net", Transport: "tcp"},
		{Scheme: "sip", Host: "trunk.example.net", Transport: "tls"},
		{Scheme: "sip", Host: "trunk.example.net.", Port: 5070},
		{Scheme: "sip", Host: "trunk.example.net", Transport: "udp"},
	}
	f.Fuzz(func(t *testing.T, mode uint8, answer []byte) {
		srv.answer.Store(&answer)
		r, err := NewResolver([]string{addr})
		if err != nil {
			t.Fatal(err)
		}
		r.client.Timeout = time.Second // a dropped reply only costs time
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ts, err := r.Resolve(ctx, hops[int(mode)%len(hops)])
		if ctx.Err() != nil {
			t.Fatalf("resolution did not finish: %v", ctx.Err())
		}
		if err != nil {
			return
		}
		for _, tg := range ts {
			if !tg.Addr.Addr().IsValid() {
				t.Fatalf("target without an address: %+v", tg)
			}
			switch tg.Transport {
			case "udp", "tcp", "tls":
			default:
				t.Fatalf("target with transport %q: %+v", tg.Transport, tg)
			}
		}
	})
}
